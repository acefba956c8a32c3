package collector

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	line := "4242 (my (weird) app) S 1 4242 4242 0 -1 4194560 10 0 0 0 150 50 0 0 20 0 3 0 123456 1000 200 18446744073709551615\n"
	p, err := parseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if p.cpuSec != 2 || p.key.Start != 123456 {
		t.Errorf("parseProcStat = %+v, want 2 s of CPU, start 123456", p)
	}
	for _, bad := range []string{"", "4242 no parens", "1 (x) S 1 2 3", "1 (x) S 1 2 3 4 5 6 7 8 9 a b c d e f g h i j"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) accepted", bad)
		}
	}
}

func TestParseStatusAndIO(t *testing.T) {
	if got := parseStatusRSS("Name:\tx\nVmRSS:\t  2048 kB\n"); got != 2048*1024 {
		t.Errorf("rss = %d", got)
	}
	if got := parseStatusRSS("Name:\tkthreadd\n"); got != 0 {
		t.Errorf("kernel thread rss = %d", got)
	}
	r, w := parseProcIO("rchar: 99\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 1\n")
	if r != 4096 || w != 8192 {
		t.Errorf("io = %d, %d", r, w)
	}
}

func TestParseCmdline(t *testing.T) {
	argv0, cmd := parseCmdline([]byte("/usr/bin/python3\x00-m\x00http.server\x00"))
	if argv0 != "python3" || cmd != "/usr/bin/python3 -m http.server" {
		t.Errorf("parseCmdline = %q, %q", argv0, cmd)
	}
	if a, c := parseCmdline([]byte("\x00")); a != "" || c != "" {
		t.Errorf("empty cmdline = %q, %q", a, c)
	}
}

func TestProcessMatcher(t *testing.T) {
	id := procIdentity{comm: "prometheus-node", argv0: "prometheus-node-exporter", cmdline: "/usr/bin/prometheus-node-exporter --web.listen-address=:9100"}
	tests := []struct {
		m    processMatcher
		want bool
	}{
		{processMatcher{name: "prometheus-node"}, true},
		{processMatcher{name: "prometheus-node-exporter"}, true},
		{processMatcher{name: "prometheus"}, false},
		{processMatcher{re: regexp.MustCompile(`listen-address=:9100`)}, true},
		{processMatcher{re: regexp.MustCompile(`^nginx`)}, false},
	}
	for _, tt := range tests {
		if got := tt.m.match(id); got != tt.want {
			t.Errorf("match(%+v) = %v, want %v", tt.m, got, tt.want)
		}
	}
	// A kernel thread has no command line: patterns never match it.
	if (processMatcher{re: regexp.MustCompile(`.*`)}).match(procIdentity{comm: "kworker/0:1"}) {
		t.Error("pattern matched a kernel thread")
	}
}

func TestReadPIDFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pid")
	bad := filepath.Join(dir, "bad.pid")
	os.WriteFile(good, []byte("1234\n"), 0o644)
	os.WriteFile(bad, []byte("twelve\n"), 0o644)
	if pid, err := readPIDFile(good); err != nil || pid != 1234 {
		t.Errorf("good = %d, %v", pid, err)
	}
	if _, err := readPIDFile(bad); err == nil {
		t.Error("bad pid file accepted")
	}
	if _, err := readPIDFile(filepath.Join(dir, "absent.pid")); err == nil {
		t.Error("absent pid file accepted")
	}
}
