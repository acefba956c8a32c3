package collector

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// This file reads processes straight from /proc rather than through
// gopsutil's process package: that package checks a pid's existence by
// signalling it, which defeats fixture trees, and walks far more files per
// process than the four an instance needs.

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times. Linux has
// fixed it at 100 on every architecture for user space since 2.6.
const clockTicks = 100

// procInfo is one process's reading.
type procInfo struct {
	key     procKey
	cpuSec  float64 // user + system
	rss     uint64  // bytes
	ioRead  uint64  // bytes fetched from storage (/proc/<pid>/io read_bytes)
	ioWrite uint64
}

// readProc reads /proc/<pid>/{stat,status,io}. A process that exits between
// listing and reading gives an error; the caller just skips it. io needs
// ptrace rights over the process: without them the I/O counters stay 0.
func readProc(proc string, pid int) (procInfo, error) {
	dir := filepath.Join(proc, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return procInfo{}, err
	}
	p, err := parseProcStat(string(stat))
	if err != nil {
		return procInfo{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	p.key.PID = pid
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		p.rss = parseStatusRSS(string(status))
	}
	if io, err := os.ReadFile(filepath.Join(dir, "io")); err == nil {
		p.ioRead, p.ioWrite = parseProcIO(string(io))
	}
	return p, nil
}

// parseProcStat reads utime, stime and starttime from /proc/<pid>/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStat(s string) (procInfo, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("parse stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15, starttime 22.
	if len(f) < 20 {
		return procInfo{}, fmt.Errorf("parse stat: %d fields after the command name, want at least 20", len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	start, err3 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procInfo{}, fmt.Errorf("parse stat: utime/stime/starttime not numbers")
	}
	return procInfo{key: procKey{Start: start}, cpuSec: float64(utime+stime) / clockTicks}, nil
}

// parseStatusRSS returns VmRSS from /proc/<pid>/status in bytes (0 for
// kernel threads, which have none).
func parseStatusRSS(s string) uint64 {
	for line := range strings.Lines(s) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

// parseProcIO returns read_bytes and write_bytes from /proc/<pid>/io: bytes
// that really went to or came from storage, not the page cache.
func parseProcIO(s string) (read, write uint64) {
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "read_bytes":
			read = n
		case "write_bytes":
			write = n
		}
	}
	return read, write
}

// procIdentity is what name and command-line matchers look at.
type procIdentity struct {
	comm    string // /proc/<pid>/comm: the kernel's 15-byte name
	argv0   string // base name of the first argument
	cmdline string // arguments joined by spaces
}

// listPIDs returns the numeric entries of the proc directory.
func listPIDs(proc string) ([]int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// readIdentity reads comm, and cmdline only when a matcher needs it: most
// hosts run hundreds of processes and this runs every tick.
func readIdentity(proc string, pid int, needCmdline bool) (procIdentity, error) {
	dir := filepath.Join(proc, strconv.Itoa(pid))
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return procIdentity{}, err
	}
	id := procIdentity{comm: strings.TrimSpace(string(comm))}
	if needCmdline {
		raw, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err == nil {
			id.argv0, id.cmdline = parseCmdline(raw)
		}
	}
	return id, nil
}

// parseCmdline splits /proc/<pid>/cmdline (NUL-separated arguments) into the
// base name of argv[0] and the arguments joined by spaces.
func parseCmdline(raw []byte) (argv0, cmdline string) {
	raw = bytes.TrimRight(raw, "\x00")
	if len(raw) == 0 {
		return "", ""
	}
	args := strings.Split(string(raw), "\x00")
	return filepath.Base(args[0]), strings.Join(args, " ")
}

// processMatcher selects processes by name or command line.
type processMatcher struct {
	name string         // equals comm or argv0's base name
	re   *regexp.Regexp // matches the joined command line
}

// needsCmdline reports whether matching must read the command line: always
// for a pattern, and for names longer than comm's 15 bytes, which the kernel
// truncates.
func (m processMatcher) needsCmdline() bool {
	return m.re != nil || len(m.name) > 15
}

func (m processMatcher) match(id procIdentity) bool {
	if m.re != nil {
		return id.cmdline != "" && m.re.MatchString(id.cmdline)
	}
	return id.comm == m.name || id.argv0 == m.name
}

// readPIDFile reads a pid file ("1234\n"), as daemons write them.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}
