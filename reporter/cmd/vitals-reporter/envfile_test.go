package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestParseEnvFile pins the systemd EnvironmentFile= rules (systemd.exec(5),
// src/basic/env-file.c) the cron path now shares with the units.
func TestParseEnvFile(t *testing.T) {
	file := strings.Join([]string{
		"# a comment",
		"; another comment",
		"",
		"PLAIN=1",
		"  SPACED = two  words  ",
		"noequals",
		`DQ="a \"b\" \\ \$ \n"`,
		`SQ='verbatim \n $x "y"'`,
		"CONT=ab\\",
		"cd",
		`ESC=esc\ aped\#`,
		"MULTI=\"one",
		"two\"",
		"EMPTY=",
		"export EXPORTED=1",
		"1DIGIT=x",
		`MIX="x" 'y' z`,
		"CRLF=v\r",
		"HASH=v # not a comment  ",
		"PLAIN=2",
		"# a comment ending in a backslash \\",
		"AFTER=ok",
		"LAST='unterminated",
	}, "\n")
	vars, ignored := parseEnvFile([]byte(file))
	got := map[string]string{}
	var order []string
	for _, v := range vars {
		got[v.key] = v.value
		order = append(order, v.key)
	}
	want := map[string]string{
		"PLAIN":  "2",
		"SPACED": "two  words",
		"DQ":     `a "b" \ $ \n`,
		"SQ":     `verbatim \n $x "y"`,
		"CONT":   "abcd",
		"ESC":    "esc aped#",
		"MULTI":  "one\ntwo",
		"EMPTY":  "",
		"MIX":    "xyz",
		"CRLF":   "v",
		"HASH":   "v # not a comment",
		"AFTER":  "ok",
		"LAST":   "unterminated",
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s = %q (set %v), want %q", k, g, ok, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected variable %s=%q", k, got[k])
		}
	}
	if strings.Join(ignored, ",") != "export EXPORTED,1DIGIT" {
		t.Errorf("ignored = %q", ignored)
	}
	if order[0] != "PLAIN" || order[len(order)-1] != "LAST" {
		t.Errorf("order = %v", order)
	}
	// A NUL ends the content, as for systemd's C string.
	if vars, _ := parseEnvFile([]byte("A=1\x00\nB=2\n")); len(vars) != 1 || vars[0].value != "1" {
		t.Errorf("after NUL: %+v", vars)
	}
	// Invalid UTF-8 values are dropped, not passed on.
	if vars, ignored := parseEnvFile([]byte("A=\xff\n")); len(vars) != 0 || len(ignored) != 1 {
		t.Errorf("invalid UTF-8: %+v %v", vars, ignored)
	}
}

// FuzzParseEnvFile: any bytes parse without panicking into valid names.
func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\nB=\"x\\\ny\"\n# c\\\nC='z'"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vars, _ := parseEnvFile(b)
		for _, v := range vars {
			if !validEnvName(v.key) {
				t.Fatalf("invalid name %q accepted", v.key)
			}
		}
	})
}

func TestEnvFilePrecedence(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "reporter.env")
	os.WriteFile(envFile, []byte("VITALS_SERVER_ID=from-env-file\nVITALS_HOST_KEY=\"file-key\"\nVITALS_INGEST_URL=https://file.example/api/ingest\nVITALS_ENV_FILE=/ignored\n"), 0o600)
	e := map[string]string{
		"VITALS_ENV_FILE":   envFile,
		"VITALS_SERVER_ID":  "from-crontab",
		"VITALS_STATE_DIR":  "/crontab/state",
		"VITALS_INGEST_URL": "https://crontab.example/api/ingest",
	}
	cfg, _, err := loadConfig("once", nil, env(e), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// The file wins over the process's environment, as EnvironmentFile=
	// wins over Environment=; what it does not set comes from the
	// environment.
	if cfg.ServerID != "from-env-file" || string(cfg.HostKey) != "file-key" || cfg.IngestURL != "https://file.example/api/ingest" || cfg.StateDir != "/crontab/state" {
		t.Errorf("config = %+v", cfg)
	}
	// Flags win over both.
	cfg, _, err = loadConfig("once", []string{"--server-id", "from-flag", "--env-file", envFile}, env(nil), io.Discard)
	if err != nil || cfg.ServerID != "from-flag" || string(cfg.HostKey) != "file-key" {
		t.Errorf("with flags: %+v, %v", cfg, err)
	}
	// A missing file is a configuration error, not a silent default.
	_, _, err = loadConfig("once", []string{"--env-file", filepath.Join(dir, "absent")}, env(nil), io.Discard)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "env file") {
		t.Errorf("missing env file: %v", err)
	}
	// A world-readable file (it holds the key) draws a warning.
	os.Chmod(envFile, 0o644)
	var warn bytes.Buffer
	if _, _, err := loadConfig("once", []string{"--env-file", envFile}, env(nil), &warn); err != nil || !strings.Contains(warn.String(), "chmod 600") {
		t.Errorf("world-readable env file: %v, warning %q", err, warn.String())
	}
}

// TestKeyFileOfAnotherServer: the old cron recipe used the env file as a key
// file only, so a host whose hostname is not its enrolled id signed as the
// hostname and got 401 on every batch. That is now a configuration error
// (exit 2) that says to read the whole file.
func TestKeyFileOfAnotherServer(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "reporter.env")
	os.WriteFile(envFile, []byte("VITALS_SERVER_ID=enrolled-id\nVITALS_HOST_KEY=abc\n"), 0o600)
	_, _, err := loadConfig("once", nil, env(map[string]string{"VITALS_HOST_KEY_FILE": envFile, "VITALS_SERVER_ID": "other-id"}), io.Discard)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `"enrolled-id"`) || !strings.Contains(err.Error(), "--env-file") {
		t.Errorf("key file of another server = %v, want a usage error naming both ids and --env-file", err)
	}
	cfg, _, err := loadConfig("once", nil, env(map[string]string{"VITALS_HOST_KEY_FILE": envFile, "VITALS_SERVER_ID": "enrolled-id"}), io.Discard)
	if err != nil || string(cfg.HostKey) != "abc" {
		t.Errorf("matching ids: %+v, %v", cfg, err)
	}
}

// cronJob reads infra/cron/vitals-reporter: its environment lines and the
// reporter's arguments on its one job line.
func cronJob(t *testing.T) (map[string]string, []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(infraDir, "cron", "vitals-reporter"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var args []string
	jobs := 0
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.Contains(k, " ") {
			env[k] = v
			continue
		}
		f := strings.Fields(line)
		if len(f) < 8 || f[5] == "" || f[6] != "vitals-reporter" || f[7] != "once" {
			t.Fatalf("job line %q: want '<5 fields> <user> vitals-reporter once …'", line)
		}
		jobs++
		for _, a := range f[8:] {
			if strings.ContainsAny(a, "|>") {
				break
			}
			args = append(args, a)
		}
	}
	if jobs != 1 {
		t.Fatalf("%d job lines, want 1", jobs)
	}
	return env, args
}

// TestCronRunUsesEnvFile runs the cron job as cron would (its environment
// lines, its arguments) on a host whose hostname is not its enrolled server
// id, with the env file `vitalsctl host add` prints (here with a comment and
// quotes, which systemd accepts), against the real ingest handler and
// Redis: the sample must arrive under the enrolled id. With the old recipe
// (the file read only for its key) it was signed as the hostname, refused
// with 401 and dropped.
func TestCronRunUsesEnvFile(t *testing.T) {
	ctx := context.Background()
	r := redistest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	scfg := redisstore.DefaultConfig()
	scfg.URL, scfg.Prefix = r.URL, r.Prefix
	store, err := redisstore.Open(ctx, scfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	host, _ := os.Hostname()
	id := "cron-enrolled-" + strings.ReplaceAll(host, ".", "-")
	key, err := store.AddHost(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Logger: logger}))
	defer srv.Close()

	dir := t.TempDir()
	envFile := filepath.Join(dir, "reporter.env")
	os.WriteFile(envFile, []byte("# from vitalsctl host add\nVITALS_SERVER_ID="+id+"\nVITALS_HOST_KEY=\""+string(key)+"\"\nVITALS_INGEST_URL="+srv.URL+"/api/ingest\n"), 0o600)
	stateDir := filepath.Join(dir, "state")

	cronEnv, args := cronJob(t)
	for k, v := range cronEnv {
		switch v {
		case "/etc/vitals/reporter.env":
			cronEnv[k] = envFile
		case "/var/lib/vitals-reporter":
			cronEnv[k] = stateDir
		}
	}
	if _, ok := cronEnv["VITALS_INGEST_URL"]; ok {
		cronEnv["VITALS_INGEST_URL"] = srv.URL + "/api/ingest" // the operator's edit
	}
	var stderr bytes.Buffer
	if err := run(ctx, append([]string{"once"}, args...), env(cronEnv), io.Discard, &stderr); err != nil {
		t.Fatalf("cron run: %v\n%s", err, stderr.String())
	}
	latest, err := store.LatestServer(ctx, id)
	if err != nil || latest.ServerID != id || time.Since(latest.CollectedAt) > time.Minute {
		t.Fatalf("latest of %s: %+v, %v\n%s", id, latest, err, stderr.String())
	}
	if strings.Contains(stderr.String(), string(key)) {
		t.Fatal("key in the output")
	}
}
