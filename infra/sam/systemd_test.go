package sam_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The services that run the functions and the streamer without Lambda, and
// the main package whose default address each unit must repeat.
var serviceUnits = map[string]string{
	"vitals-ingest.service":   "functions/ingest/main.go",
	"vitals-query.service":    "functions/query/main.go",
	"vitals-streamer.service": "streamer/cmd/vitals-streamer/main.go",
}

var systemdDir = filepath.Join(repoRoot, "infra", "systemd")

// TestServiceUnitsVerify runs systemd-analyze verify over the units (with
// ExecStart pointed at an executable that exists here, since verify checks
// it) and their offline security exposure.
func TestServiceUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd); unit files not verified")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for unit := range serviceUnits {
		b, err := os.ReadFile(filepath.Join(systemdDir, unit))
		if err != nil {
			t.Fatal(err)
		}
		b = regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/vitals-\w+`).ReplaceAll(b, []byte("ExecStart="+self))
		p := filepath.Join(dir, unit)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	// verify also reports on system units it happens to load; only lines
	// about ours count.
	var ours []string
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, dir) || strings.Contains(line, "vitals-") {
			ours = append(ours, strings.TrimSpace(line))
		}
	}
	if err != nil || len(ours) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, strings.Join(ours, "\n"))
	}
	// Exposure score: 0 is best, 10 worst; these units score about 1.
	for _, p := range paths {
		out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", p).CombinedOutput()
		if err != nil && strings.Contains(string(out), "offline") && strings.Contains(string(out), "nrecognized") {
			t.Log("systemd-analyze too old for security --offline; exposure not checked")
			break
		}
		if err != nil {
			last := string(out)
			if i := strings.LastIndex(last, "Overall exposure"); i >= 0 {
				last = last[i:]
			}
			t.Errorf("%s: exposure above 2.0 (or analysis failed): %v\n%s", filepath.Base(p), err, last)
		}
	}
}

// TestServiceUnitsHardened checks what the units promise without systemd:
// hardening, restart policy, environment files, and the listen address
// each main defaults to.
func TestServiceUnitsHardened(t *testing.T) {
	defaultAddr := regexp.MustCompile(`const defaultAddr = "([^"]+)"`)
	for unit, mainFile := range serviceUnits {
		b, err := os.ReadFile(filepath.Join(systemdDir, unit))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=always",
			"CapabilityBoundingSet=\n", "EnvironmentFile=/etc/vitals/vitals.env\n", "KillSignal=SIGTERM",
		} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s lacks %q", unit, strings.TrimSpace(want))
			}
		}
		// Ingest needs no user-token secret; the others do.
		hasJWT := bytes.Contains(b, []byte("EnvironmentFile=/etc/vitals/jwt.env\n"))
		if hasJWT == (unit == "vitals-ingest.service") {
			t.Errorf("%s: jwt.env loaded = %v; only query and streamer verify user tokens", unit, hasJWT)
		}
		src, err := os.ReadFile(filepath.Join(repoRoot, mainFile))
		if err != nil {
			t.Fatal(err)
		}
		m := defaultAddr.FindSubmatch(src)
		if m == nil {
			t.Fatalf("%s: no defaultAddr constant", mainFile)
		}
		if want := "Environment=VITALS_ADDR=" + string(m[1]) + " "; !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s: want %q (the default of %s, kept explicit in the unit)", unit, strings.TrimSpace(want), mainFile)
		}
	}
}

// TestEnvExamples: the example environment files are KEY=value lines of
// VITALS_ variables, with no real secret in them.
func TestEnvExamples(t *testing.T) {
	for _, name := range []string{"vitals.env.example", "jwt.env.example"} {
		f, err := os.Open(filepath.Join(systemdDir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok || !strings.HasPrefix(k, "VITALS_") {
				t.Errorf("%s: %q is not a VITALS_ assignment", name, line)
			}
			if secretish.MatchString(k) && k != "VITALS_REDIS_URL" && v != "" {
				t.Errorf("%s: %s has a value; examples must not ship a secret", name, k)
			}
			n++
		}
		f.Close()
		if n == 0 {
			t.Errorf("%s sets nothing", name)
		}
	}
}
