package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/reporter"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"version"}, env(nil), &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "vitals-reporter ") {
		t.Errorf("version = %q", out.String())
	}
	for _, args := range [][]string{nil, {"explode"}, {"print", "stray"}, {"print", "--nope"}} {
		err := run(context.Background(), args, env(nil), io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("run(%q) = %v, want a usage error (exit 2)", args, err)
		}
	}
	if err := run(context.Background(), []string{"run", "-h"}, env(nil), io.Discard, io.Discard); err != nil {
		t.Errorf("-h: %v", err)
	}
}

func TestPrintNeedsNoNetworkOrKey(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"print", "--server-id", "p1", "--instance", "name=me,pid=" + strconv.Itoa(os.Getpid())}, env(nil), &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var s metric.Sample
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("print output is not a sample: %v\n%s", err, out.String())
	}
	body, _ := json.Marshal(metric.Batch{Samples: []metric.Sample{s}})
	if _, err := metric.DecodeBatch(body, "p1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(s.Instances) != 1 || s.Instances[0].Name != "me" {
		t.Errorf("instances = %+v", s.Instances)
	}
}

func TestPrecedenceFlagsEnvFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "reporter.json")
	os.WriteFile(file, []byte(`{
		"ingestUrl": "https://file.example/api/ingest",
		"serverId": "from-file",
		"hostKey": "file-key",
		"interval": "30s",
		"stateDir": "/file/state",
		"mainDisk": "/data",
		"batchSize": 7,
		"docker": true,
		"spoolMaxAge": "2d",
		"instances": [{"name": "web", "process": "nginx", "dataPath": "/srv/www"}]
	}`), 0o600)

	// File only.
	cfg, _, err := loadConfig("run", []string{"--config", file}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IngestURL != "https://file.example/api/ingest" || cfg.ServerID != "from-file" || string(cfg.HostKey) != "file-key" ||
		cfg.Interval != 30*time.Second || cfg.StateDir != "/file/state" || cfg.MainDisk != "/data" || cfg.BatchSize != 7 ||
		!cfg.Docker || cfg.SpoolMaxAge != 48*time.Hour || len(cfg.Instances) != 1 || cfg.Instances[0].DataPath != "/srv/www" {
		t.Errorf("file config = %+v", cfg)
	}

	// Env over file.
	e := map[string]string{
		"VITALS_CONFIG":     file,
		"VITALS_INGEST_URL": "https://env.example/api/ingest",
		"VITALS_SERVER_ID":  "from-env",
		"VITALS_HOST_KEY":   "env-key",
		"VITALS_INTERVAL":   "20",
		"VITALS_STATE_DIR":  "/env/state",
		"VITALS_INSTANCES":  "name=a,pid=1;name=b,cgroup=/system.slice/b.service",
		"VITALS_DOCKER":     "false",
	}
	cfg, _, err = loadConfig("run", nil, env(e), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IngestURL != "https://env.example/api/ingest" || cfg.ServerID != "from-env" || string(cfg.HostKey) != "env-key" ||
		cfg.Interval != 20*time.Second || cfg.StateDir != "/env/state" || cfg.Docker || len(cfg.Instances) != 2 || cfg.MainDisk != "/data" {
		t.Errorf("env config = %+v", cfg)
	}

	// Flags over env.
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("flag-key\n"), 0o600)
	cfg, _, err = loadConfig("run", []string{
		"--ingest-url", "https://flag.example/api/ingest", "--server-id", "from-flag", "--host-key-file", keyFile,
		"--interval", "5s", "--state-dir", "/flag/state", "--instance", "name=c,process=redis-server", "--docker=true",
	}, env(e), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.IngestURL != "https://flag.example/api/ingest" || cfg.ServerID != "from-flag" || string(cfg.HostKey) != "flag-key" ||
		cfg.Interval != 5*time.Second || cfg.StateDir != "/flag/state" || !cfg.Docker || len(cfg.Instances) != 1 || cfg.Instances[0].Name != "c" {
		t.Errorf("flag config = %+v", cfg)
	}
}

func TestDefaults(t *testing.T) {
	cfg, ls, err := loadConfig("run", nil, env(map[string]string{"STATE_DIRECTORY": "/var/lib/vitals-reporter:/other"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if cfg.ServerID != host || cfg.StateDir != "/var/lib/vitals-reporter" || ls.format != "text" || ls.level != "info" {
		t.Errorf("defaults = %+v %+v", cfg, ls)
	}
}

func TestKeyFileForms(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"bare":     "abc123\n",
		"env file": "VITALS_SERVER_ID=web-1\nVITALS_HOST_KEY=abc123\n",
		"quoted":   "VITALS_HOST_KEY=\"abc123\"\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		os.WriteFile(p, []byte(content), 0o600)
		key, _, err := readKeyFile(p, io.Discard)
		if err != nil || string(key) != "abc123" {
			t.Errorf("%s: key = %q, %v", name, key, err)
		}
	}
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte("abc"), 0o644)
	var warn bytes.Buffer
	if _, _, err := readKeyFile(loose, &warn); err != nil || !strings.Contains(warn.String(), "chmod 600") {
		t.Errorf("world-readable key file: err %v, warning %q", err, warn.String())
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, _, err := readKeyFile(empty, io.Discard); err == nil {
		t.Error("empty key file accepted")
	}
}

func TestBadConfigMessages(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"ingestUrl": "x", "intervall": "5s"}`), 0o600)
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte(`{"ingestUrl": `), 0o600)
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--interval", "soon"}, nil, "interval"},
		{[]string{"--interval", "-5"}, nil, "interval"},
		{nil, map[string]string{"VITALS_BATCH_SIZE": "many"}, "batch size"},
		{nil, map[string]string{"VITALS_DOCKER": "maybe"}, "docker"},
		{[]string{"--config", bad}, nil, `unknown field "intervall"`},
		{[]string{"--config", broken}, nil, "config file"},
		{[]string{"--config", filepath.Join(dir, "absent.json")}, nil, "no such file"},
		{[]string{"--instance", "name=x"}, nil, "exactly one of"},
		{[]string{"--instance", "name=x,colour=red"}, nil, "unknown key"},
		{[]string{"--instance", "name=x,pid=zero"}, nil, "not a process id"},
		{nil, map[string]string{"VITALS_INSTANCES": "name=x,cmdline=("}, "VITALS_INSTANCES"},
		{[]string{"--log-format", "xml"}, nil, "log format"},
		{[]string{"--host-key-file", filepath.Join(dir, "nokey")}, nil, "host key file"},
	}
	for _, tt := range tests {
		_, _, err := loadConfig("run", tt.args, env(tt.env), io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("loadConfig(%q, %v) = %v, want a usage error mentioning %q", tt.args, tt.env, err, tt.want)
		}
	}
	// Missing sending config is found by the agent and still exits 2.
	err := run(context.Background(), []string{"once", "--state-dir", dir}, env(nil), io.Discard, io.Discard)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "ingest url is required") {
		t.Errorf("once without a URL = %v", err)
	}
}

func TestParseInstance(t *testing.T) {
	tests := []struct {
		spec string
		want reporter.InstanceConfig
	}{
		{"name=web,process=nginx,data=/srv/www", reporter.InstanceConfig{Name: "web", Process: "nginx", DataPath: "/srv/www"}},
		{"name=api,cmdline=java .*-jar api\\.jar --threads=[0-9]{1,3}", reporter.InstanceConfig{Name: "api", Cmdline: "java .*-jar api\\.jar --threads=[0-9]{1,3}"}},
		{"name=db,cgroup=/system.slice/postgresql.service,id=0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f", reporter.InstanceConfig{Name: "db", Cgroup: "/system.slice/postgresql.service", ID: "0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f"}},
		{"name=app,pidfile=/run/app.pid", reporter.InstanceConfig{Name: "app", PIDFile: "/run/app.pid"}},
		{" name=me,pid=42 ", reporter.InstanceConfig{Name: "me", PID: 42}},
	}
	for _, tt := range tests {
		got, err := parseInstance(tt.spec)
		if err != nil || got != tt.want {
			t.Errorf("parseInstance(%q) = %+v, %v\nwant %+v", tt.spec, got, err, tt.want)
		}
	}
}

func TestOnceEndToEnd(t *testing.T) {
	key := auth.NewHostKey()
	var got []metric.Sample
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		if err := auth.VerifyRequest(key, r.Header.Get(auth.HeaderTimestamp), r.Header.Get(auth.HeaderServer), raw, r.Header.Get(auth.HeaderSignature), time.Now()); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got = append(got, metric.Sample{})
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, key, 0o600)
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"once", "--ingest-url", srv.URL + "/api/ingest", "--host-key-file", keyFile, "--server-id", "e2e"},
		env(map[string]string{"VITALS_STATE_DIR": dir}), io.Discard, &stderr)
	if err != nil {
		t.Fatalf("once: %v\n%s", err, stderr.String())
	}
	if len(got) != 1 {
		t.Fatalf("requests = %d", len(got))
	}
	if strings.Contains(stderr.String(), string(key)) {
		t.Fatal("key in the output")
	}
	// With the endpoint gone, once exits non-zero and keeps the sample.
	srv.Close()
	time.Sleep(1100 * time.Millisecond)
	err = run(context.Background(), []string{"once", "--ingest-url", srv.URL + "/api/ingest", "--host-key-file", keyFile, "--server-id", "e2e", "--timeout", "2s"},
		env(map[string]string{"VITALS_STATE_DIR": dir}), io.Discard, io.Discard)
	var ue usageError
	if err == nil || errors.As(err, &ue) {
		t.Fatalf("once with the endpoint down = %v, want a delivery failure (exit 1)", err)
	}
}
