package collector

import (
	"path/filepath"
	"testing"
)

func TestCgroupV2(t *testing.T) {
	fs := detectCgroups(filepath.Join("..", "testdata", "cgroup-v2"))
	if fs.unified == "" || len(fs.v1) != 0 {
		t.Fatalf("detect = %+v, want unified only", fs)
	}
	r, err := fs.read("/system.slice/postgresql.service")
	if err != nil {
		t.Fatal(err)
	}
	want := cgroupReading{cpuSec: 123.456789, hasCPU: true, memUsed: 384 << 20, memLimit: 0, ioRead: 1048577, ioWrite: 2097154}
	if r != want {
		t.Errorf("read = %+v\nwant   %+v", r, want)
	}
	r, err = fs.read("system.slice/capped.service")
	if err != nil {
		t.Fatal(err)
	}
	if r.memLimit != 4096 || r.memUsed != 1000 || r.ioRead != 0 {
		t.Errorf("capped = %+v", r)
	}
	if _, err := fs.read("/system.slice/absent.service"); err == nil {
		t.Error("absent group read without error")
	}
	// Path traversal stays inside the hierarchy.
	if _, err := fs.read("../../../../etc"); err == nil {
		t.Error("a path escaping the hierarchy was read")
	}
}

func TestCgroupV1CombinedMount(t *testing.T) {
	fs := detectCgroups(filepath.Join("..", "testdata", "cgroup-v1"))
	if fs.unified != "" || fs.v1["cpuacct"] == "" || fs.v1["memory"] == "" || fs.v1["blkio"] == "" {
		t.Fatalf("detect = %+v", fs)
	}
	r, err := fs.read("/docker/abc")
	if err != nil {
		t.Fatal(err)
	}
	want := cgroupReading{cpuSec: 2.5, hasCPU: true, memUsed: 80 << 20, memLimit: 200 << 20, ioRead: 11, ioWrite: 22}
	if r != want {
		t.Errorf("read = %+v\nwant   %+v", r, want)
	}
}

func TestCgroupHybrid(t *testing.T) {
	fs := detectCgroups(filepath.Join("..", "testdata", "tick1", "sys"))
	if fs.unified == "" || fs.v1["memory"] == "" {
		t.Fatalf("detect = %+v, want both", fs)
	}
}

func TestParseMemLimit(t *testing.T) {
	for in, want := range map[string]uint64{
		"max\n": 0, "9223372036854771712\n": 0, "1073741824\n": 1 << 30, "0": 0,
	} {
		got, err := parseMemLimit(in)
		if err != nil || got != want {
			t.Errorf("parseMemLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseMemLimit("lots"); err == nil {
		t.Error("parseMemLimit accepted garbage")
	}
}

func TestParseIOStat(t *testing.T) {
	r, w := parseIOStatV2("8:0 rbytes=10 wbytes=20 rios=1 wios=2\n259:0 rbytes=5 wbytes=x\n")
	if r != 15 || w != 20 {
		t.Errorf("v2 = %d, %d", r, w)
	}
	r, w, ok := parseBlkioV1("8:0 Read 10\n8:0 Write 20\n8:0 Total 30\n8:16 Read 1\nTotal 31\n")
	if !ok || r != 11 || w != 20 {
		t.Errorf("v1 = %d, %d, %v", r, w, ok)
	}
	if _, _, ok := parseBlkioV1("Total 0\n"); ok {
		t.Error("an empty blkio file counted as data")
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0::/system.slice/nginx.service\n", "/system.slice/nginx.service"},
		// Hybrid, as on our build machine: the v2 line is "/", the memory
		// controller knows the real group.
		{"9:name=systemd:/\n4:memory:/process_api/2e14\n2:cpuacct:/\n0::/\n", "/process_api/2e14"},
		{"12:cpu,cpuacct:/docker/abc\n11:memory:/docker/abc\n", "/docker/abc"},
	}
	for _, tt := range tests {
		got, err := parseProcCgroup(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseProcCgroup(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseProcCgroup("garbage"); err == nil {
		t.Error("garbage parsed")
	}
}
