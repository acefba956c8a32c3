package collector

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupFS locates the cgroup hierarchies under /sys/fs/cgroup. Three layouts
// exist in the wild and this handles all of them:
//   - unified (cgroup v2 only): cgroup2 mounted at /sys/fs/cgroup;
//   - legacy (v1 only): one directory per controller (cpuacct, memory, blkio…);
//   - hybrid: v1 controllers plus a v2 tree at /sys/fs/cgroup/unified, where
//     the v2 tree usually has no controllers enabled (this is what systemd
//     does by default on older distributions, and what our build machine runs).
//
// Each figure is read from the v2 tree when its file is there and from the v1
// controller otherwise, so a hybrid host gets whatever each side offers.
type cgroupFS struct {
	unified string            // v2 mount, "" if none
	v1      map[string]string // controller name → v1 mount directory
}

func detectCgroups(sys string) cgroupFS {
	base := filepath.Join(sys, "fs", "cgroup")
	fs := cgroupFS{v1: map[string]string{}}
	if fileExists(filepath.Join(base, "cgroup.controllers")) {
		fs.unified = base
		return fs
	}
	if fileExists(filepath.Join(base, "unified", "cgroup.controllers")) {
		fs.unified = filepath.Join(base, "unified")
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return fs
	}
	for _, e := range entries {
		// Combined mounts are named "cpu,cpuacct"; distributions add
		// symlinks named after each controller, which resolve the same.
		for _, ctrl := range strings.Split(e.Name(), ",") {
			switch ctrl {
			case "cpuacct", "memory", "blkio":
				if _, ok := fs.v1[ctrl]; !ok {
					fs.v1[ctrl] = filepath.Join(base, e.Name())
				}
			}
		}
	}
	return fs
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// cgroupReading is one cgroup's resource use.
type cgroupReading struct {
	cpuSec   float64 // cumulative CPU time of every task in the group
	hasCPU   bool
	memUsed  uint64 // working set: usage minus inactive file cache
	memLimit uint64 // 0 = no limit
	ioRead   uint64 // cumulative bytes
	ioWrite  uint64
}

// unlimitedV1 is the threshold above which a v1 memory limit means "none":
// the kernel reports PAGE_COUNTER_MAX rounded to pages (9223372036854771712).
const unlimitedV1 = 1 << 62

// read reads the cgroup at path (as /proc/<pid>/cgroup names it, e.g.
// "/system.slice/nginx.service"). It fails when no hierarchy has that group.
func (fs cgroupFS) read(path string) (cgroupReading, error) {
	rel := filepath.Clean("/" + path)
	var r cgroupReading
	found := false
	dir := func(root string) string {
		if root == "" {
			return ""
		}
		d := filepath.Join(root, rel)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			found = true
			return d
		}
		return ""
	}
	v2 := dir(fs.unified)

	// CPU: v2 cpu.stat usage_usec exists in every v2 group, even with no
	// controller enabled; v1 cpuacct.usage is nanoseconds.
	if v2 != "" {
		if kv, err := readKeyValues(filepath.Join(v2, "cpu.stat")); err == nil {
			if us, ok := kv["usage_usec"]; ok {
				r.cpuSec, r.hasCPU = float64(us)/1e6, true
			}
		}
	}
	if d := dir(fs.v1["cpuacct"]); !r.hasCPU && d != "" {
		if ns, err := readUint(filepath.Join(d, "cpuacct.usage")); err == nil {
			r.cpuSec, r.hasCPU = float64(ns)/1e9, true
		}
	}

	// Memory: the working set, as docker stats and kubelet compute it, so
	// reclaimable page cache does not look like a leak.
	memDone := false
	if v2 != "" {
		if cur, err := readUint(filepath.Join(v2, "memory.current")); err == nil {
			kv, _ := readKeyValues(filepath.Join(v2, "memory.stat"))
			r.memUsed = cur - min(kv["inactive_file"], cur)
			r.memLimit, _ = readLimit(filepath.Join(v2, "memory.max"))
			memDone = true
		}
	}
	if d := dir(fs.v1["memory"]); !memDone && d != "" {
		if cur, err := readUint(filepath.Join(d, "memory.usage_in_bytes")); err == nil {
			kv, _ := readKeyValues(filepath.Join(d, "memory.stat"))
			r.memUsed = cur - min(kv["total_inactive_file"], cur)
			r.memLimit, _ = readLimit(filepath.Join(d, "memory.limit_in_bytes"))
		}
	}

	// Block I/O.
	ioDone := false
	if v2 != "" {
		if b, err := os.ReadFile(filepath.Join(v2, "io.stat")); err == nil {
			r.ioRead, r.ioWrite = parseIOStatV2(string(b))
			ioDone = true
		}
	}
	if d := dir(fs.v1["blkio"]); !ioDone && d != "" {
		// The throttle files count every I/O; the plain and bfq ones only
		// what their scheduler saw. Take the first that has numbers.
		for _, f := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.io_service_bytes_recursive", "blkio.bfq.io_service_bytes_recursive"} {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				continue
			}
			if rd, wr, ok := parseBlkioV1(string(b)); ok {
				r.ioRead, r.ioWrite = rd, wr
				break
			}
		}
	}
	if !found {
		return r, fmt.Errorf("cgroup %s: not found in any hierarchy", rel)
	}
	return r, nil
}

func parseProcCgroup(s string) (string, error) {
	var v1mem string
	for line := range strings.Lines(s) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" && parts[2] != "/" {
			return parts[2], nil
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1mem = parts[2]
			}
		}
	}
	if v1mem != "" {
		return v1mem, nil
	}
	return "", fmt.Errorf("parse cgroup: no v2 or memory entry")
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// readLimit reads a memory limit file: "max" (v2) or a huge number (v1)
// mean no limit, reported as 0.
func readLimit(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseMemLimit(string(b))
}

func parseMemLimit(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse memory limit %q: %w", s, err)
	}
	if n >= unlimitedV1 {
		return 0, nil
	}
	return n, nil
}

// readKeyValues parses "key value" lines (cpu.stat, memory.stat).
func readKeyValues(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // read-only /proc or /sys file
	kv := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv, sc.Err()
}

// parseIOStatV2 sums rbytes and wbytes over the devices of a v2 io.stat:
// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
func parseIOStatV2(s string) (read, write uint64) {
	for line := range strings.Lines(s) {
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				read += n
			case "wbytes":
				write += n
			}
		}
	}
	return read, write
}

// parseBlkioV1 sums the Read and Write lines of a v1 blkio byte file
// ("8:0 Read 4096"). ok is false for a file with no device lines, which the
// kernel leaves empty when that accounting is off.
func parseBlkioV1(s string) (read, write uint64, ok bool) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "Read":
			read += n
			ok = true
		case "Write":
			write += n
			ok = true
		}
	}
	return read, write, ok
}
