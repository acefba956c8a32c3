package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The install files live in infra/; these tests keep them honest.
var infraDir = filepath.Join("..", "..", "..", "infra")

// TestSystemdUnitsVerify runs systemd-analyze verify over the units, with
// ExecStart pointed at an executable that exists here (verify checks it).
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian: apt-get install systemd); unit files not verified")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob(filepath.Join(infraDir, "systemd", "vitals-reporter*"))
	if len(units) < 3 {
		t.Fatalf("units = %v, want the service, the once service and the timer", units)
	}
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/vitals-reporter"), []byte(self))
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, paths...)...)
	out, err := cmd.CombinedOutput()
	// verify also reports on system units it happens to load; only lines
	// about ours count.
	var ours []string
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, dir) || strings.Contains(line, "vitals-reporter") {
			ours = append(ours, strings.TrimSpace(line))
		}
	}
	if err != nil || len(ours) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, strings.Join(ours, "\n"))
	}

	// The hardening score (0 best, 10 worst); the unit scores 1.7 ("OK").
	// --offline needs systemd 250 or later.
	for _, unit := range []string{"vitals-reporter.service", "vitals-reporter-once.service"} {
		out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", filepath.Join(dir, unit)).CombinedOutput()
		if err != nil && strings.Contains(string(out), "offline") && strings.Contains(string(out), "nrecognized") {
			t.Logf("systemd-analyze too old for security --offline; exposure not checked")
			break
		}
		if err != nil {
			last := string(out)
			if i := strings.LastIndex(last, "Overall exposure"); i >= 0 {
				last = last[i:]
			}
			t.Errorf("%s: exposure above 2.0 (or analysis failed): %v\n%s", unit, err, last)
		}
	}
}

func TestSystemdUnitIsHardened(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(infraDir, "systemd", "vitals-reporter.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=/usr/local/bin/vitals-reporter run",
		"DynamicUser=yes", "StateDirectory=vitals-reporter", "ProtectSystem=strict",
		"NoNewPrivileges=yes", "Restart=always", "CapabilityBoundingSet=\n", "EnvironmentFile=",
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("vitals-reporter.service lacks %q", strings.TrimSpace(want))
		}
	}
	timer, err := os.ReadFile(filepath.Join(infraDir, "systemd", "vitals-reporter.timer"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(timer, []byte("Unit=vitals-reporter-once.service")) {
		t.Error("the timer must start the once service, not the daemon")
	}
}

// TestCronLine checks the cron.d file: a five-field schedule, a user, and a
// command line the reporter accepts, reading its settings from the env file
// the systemd units name.
func TestCronLine(t *testing.T) {
	env, args := cronJob(t)
	envFile := filepath.Join(t.TempDir(), "reporter.env")
	if err := os.WriteFile(envFile, []byte("VITALS_SERVER_ID=web-1\nVITALS_HOST_KEY=k\nVITALS_INGEST_URL=https://vitals.example.com/api/ingest\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if env["VITALS_ENV_FILE"] != "/etc/vitals/reporter.env" {
		t.Fatalf("the cron file must read the units' env file, /etc/vitals/reporter.env: VITALS_ENV_FILE=%q", env["VITALS_ENV_FILE"])
	}
	env["VITALS_ENV_FILE"] = envFile
	cfg, _, err := loadConfig("once", args, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("cron command line: %v", err)
	}
	if cfg.ServerID != "web-1" || cfg.IngestURL == "" || cfg.StateDir != "/var/lib/vitals-reporter" {
		t.Errorf("cron environment not picked up: %+v", cfg)
	}
	for _, unit := range []string{"vitals-reporter.service", "vitals-reporter-once.service"} {
		b, err := os.ReadFile(filepath.Join(infraDir, "systemd", unit))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("\nEnvironmentFile=/etc/vitals/reporter.env\n")) {
			t.Errorf("%s does not read /etc/vitals/reporter.env, the file the cron job reads", unit)
		}
	}
}
