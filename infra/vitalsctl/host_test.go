package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// redisEnv is an environment pointing vitalsctl at this test's own prefix
// of the package's real Redis.
func redisEnv(t *testing.T) map[string]string {
	t.Helper()
	r := redistest.New(t)
	return map[string]string{"VITALS_REDIS_URL": r.URL, "VITALS_REDIS_PREFIX": r.Prefix}
}

// envLines parses host add's stdout.
func envLines(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("stdout line %q is not KEY=value", line)
		}
		m[k] = v
	}
	_, withURL := m["VITALS_INGEST_URL"]
	if m["VITALS_SERVER_ID"] == "" || m["VITALS_HOST_KEY"] == "" || len(m) != 2 && !(len(m) == 3 && withURL) {
		t.Fatalf("stdout = %q, want exactly VITALS_SERVER_ID and VITALS_HOST_KEY (and VITALS_INGEST_URL)", out)
	}
	return m
}

// storedKey reads the host's key back through the same store the functions
// use, to prove what vitalsctl printed is what ingest will check.
func storedKey(t *testing.T, env map[string]string, id string) ([]byte, error) {
	t.Helper()
	hk, closeFn, err := openHostKeys(t.Context(), env["VITALS_REDIS_URL"], env["VITALS_REDIS_PREFIX"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	return hk.HostKey(t.Context(), id)
}

func TestHostLifecycle(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)

	out, errOut, err := cli(t, env, "host", "add", "web-1")
	if err != nil {
		t.Fatal(err)
	}
	lines := envLines(t, out)
	key := lines["VITALS_HOST_KEY"]
	if lines["VITALS_SERVER_ID"] != "web-1" || len(key) != 64 {
		t.Fatalf("env lines = %q", lines)
	}
	if _, err := hex.DecodeString(key); err != nil {
		t.Fatalf("key %q is not hex", key)
	}
	if !strings.Contains(errOut, "Enrolled host web-1") || !strings.Contains(errOut, "only this once") || strings.Contains(errOut, key) {
		t.Errorf("stderr = %q", errOut)
	}
	stored, err := storedKey(t, env, "web-1")
	if err != nil || string(stored) != key {
		t.Fatalf("stored key = %q, %v; printed %q", stored, err, key)
	}
	// The printed key signs requests the ingest check accepts.
	now := time.Now()
	body := []byte(`{"samples":[]}`)
	sig := auth.Sign([]byte(key), now.Unix(), "web-1", body)
	if err := auth.VerifyRequest(stored, strconv.FormatInt(now.Unix(), 10), "web-1", body, sig, now); err != nil {
		t.Fatalf("signature with the printed key: %v", err)
	}

	// --ingest-url adds the third env line; a bad one is refused before
	// any key is made.
	out, _, err = cli(t, env, "host", "add", "web-2", "--ingest-url", "https://vitals.example.com/api/ingest")
	if lines := envLines(t, out); err != nil || lines["VITALS_INGEST_URL"] != "https://vitals.example.com/api/ingest" || len(lines["VITALS_HOST_KEY"]) != 64 {
		t.Fatalf("--ingest-url: %v %q", err, out)
	}
	_, _, err = cli(t, env, "host", "add", "web-3", "--ingest-url", "vitals.example.com")
	wantUsage(t, err, "absolute http(s) URL")
	// Credentials the reporter would refuse at start are refused here too.
	_, _, err = cli(t, env, "host", "add", "web-3", "--ingest-url", "https://u:p@vitals.example.com/api/ingest")
	wantUsage(t, err, "must not carry credentials")
	if _, err := storedKey(t, env, "web-3"); !errors.Is(err, metric.ErrNotFound) {
		t.Fatalf("bad --ingest-url still enrolled the host: %v", err)
	}
	if _, _, err := cli(t, env, "host", "revoke", "web-2"); err != nil {
		t.Fatal(err)
	}

	// Adding again without --rotate is refused and changes nothing.
	out, _, err = cli(t, env, "host", "add", "web-1")
	wantFailure(t, err, "--rotate")
	if out != "" {
		t.Errorf("refused add printed %q", out)
	}
	if stored, _ := storedKey(t, env, "web-1"); string(stored) != key {
		t.Fatal("refused add changed the key")
	}

	// --rotate (before or after the id) replaces the key.
	out, errOut, err = cli(t, env, "host", "add", "web-1", "--rotate")
	if err != nil {
		t.Fatal(err)
	}
	rotated := envLines(t, out)["VITALS_HOST_KEY"]
	if rotated == key || len(rotated) != 64 || !strings.Contains(errOut, "old key no longer works") {
		t.Fatalf("rotate: key %q (old %q), stderr %q", rotated, key, errOut)
	}
	stored, _ = storedKey(t, env, "web-1")
	if string(stored) != rotated {
		t.Fatal("rotation not stored")
	}
	if err := auth.VerifyRequest(stored, strconv.FormatInt(now.Unix(), 10), "web-1", body, sig, now); err == nil {
		t.Fatal("the old key still verifies after rotation")
	}
	if _, _, err := cli(t, env, "host", "add", "--rotate", "web-1"); err != nil {
		t.Fatalf("flag before the id: %v", err)
	}
	_, _, err = cli(t, env, "host", "add", "--rotate", "web-9")
	wantFailure(t, err, "not enrolled")
	if _, err := storedKey(t, env, "web-9"); !errors.Is(err, metric.ErrNotFound) {
		t.Fatalf("--rotate on an unknown host enrolled it: %v", err)
	}

	// list shows ids and dates, never keys.
	if _, _, err := cli(t, env, "host", "add", "db-1"); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, env, "host", "list")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "SERVER ID") || !strings.HasPrefix(rows[1], "db-1 ") || !strings.HasPrefix(rows[2], "web-1 ") {
		t.Fatalf("list = %q", out)
	}
	for _, r := range rows[1:] {
		f := strings.Fields(r)
		if len(f) != 3 {
			t.Fatalf("row %q: want id, enrolled, key created", r)
		}
		for _, stamp := range f[1:] {
			at, err := time.Parse(time.RFC3339, stamp)
			if err != nil || time.Since(at) > time.Hour || time.Until(at) > time.Minute {
				t.Errorf("row %q: time %q: %v", r, stamp, err)
			}
		}
	}
	if stored, _ := storedKey(t, env, "web-1"); strings.Contains(out, string(stored)) {
		t.Fatal("list shows a key")
	}
	out, _, err = cli(t, env, "host", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []metric.Host
	if err := json.Unmarshal([]byte(out), &hosts); err != nil || len(hosts) != 2 || hosts[0].ServerID != "db-1" || hosts[1].ServerID != "web-1" {
		t.Fatalf("list --json = %s (%v)", out, err)
	}
	if stored, _ := storedKey(t, env, "web-1"); strings.Contains(out, string(stored)) {
		t.Errorf("list --json shows a key: %s", out)
	}
	// web-1 was rotated twice: its enrolment time stayed, its key is newer.
	if w := hosts[1]; !w.EnrolledAt.Before(w.KeyCreatedAt) || hosts[0].EnrolledAt != hosts[0].KeyCreatedAt {
		t.Errorf("rotation lost the enrolment time: %+v", hosts)
	}

	// revoke deletes the key; a second revoke says there is nothing to do.
	out, _, err = cli(t, env, "host", "revoke", "web-1")
	if err != nil || !strings.Contains(out, "Revoked host web-1") {
		t.Fatalf("revoke: %v, %q", err, out)
	}
	if _, err := storedKey(t, env, "web-1"); !errors.Is(err, metric.ErrNotFound) {
		t.Fatalf("key after revoke: %v", err)
	}
	_, _, err = cli(t, env, "host", "revoke", "web-1")
	wantFailure(t, err, "not enrolled")
	out, _, _ = cli(t, env, "host", "list")
	if strings.Contains(out, "web-1") {
		t.Errorf("revoked host still listed: %q", out)
	}
	// A revoked host can be enrolled again, with a new key.
	out, _, err = cli(t, env, "host", "add", "web-1")
	if err != nil || envLines(t, out)["VITALS_HOST_KEY"] == rotated {
		t.Fatalf("re-enrol: %v %q", err, out)
	}
}

func TestHostListEmpty(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	out, errOut, err := cli(t, env, "host", "list")
	if err != nil || out != "" || !strings.Contains(errOut, "No hosts enrolled") {
		t.Fatalf("list: %v, stdout %q, stderr %q", err, out, errOut)
	}
	out, _, err = cli(t, env, "host", "list", "--json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("list --json: %v, %q", err, out)
	}
}

func TestHostFlagsOverrideEnv(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	other := redistest.New(t).Prefix
	if _, _, err := cli(t, env, "host", "add", "web-1", "--redis-prefix", other); err != nil {
		t.Fatal(err)
	}
	if _, err := storedKey(t, env, "web-1"); !errors.Is(err, metric.ErrNotFound) {
		t.Fatalf("host landed under the env prefix despite --redis-prefix: %v", err)
	}
	if _, err := storedKey(t, map[string]string{"VITALS_REDIS_URL": env["VITALS_REDIS_URL"], "VITALS_REDIS_PREFIX": other}, "web-1"); err != nil {
		t.Fatalf("host not under --redis-prefix: %v", err)
	}
	// --redis-url overrides a wrong environment.
	bad := map[string]string{"VITALS_REDIS_URL": "redis://127.0.0.1:1", "VITALS_REDIS_PREFIX": other}
	out, _, err := cli(t, bad, "host", "list", "--redis-url", env["VITALS_REDIS_URL"])
	if err != nil || !strings.Contains(out, "web-1") {
		t.Fatalf("--redis-url: %v, %q", err, out)
	}
}

func TestHostErrors(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"host", "add"}, "exactly one server id"},
		{[]string{"host", "add", "a", "b"}, "exactly one server id"},
		{[]string{"host", "add", "web/1"}, "must be 1-128 characters"},
		{[]string{"host", "add", strings.Repeat("x", 129)}, "must be 1-128 characters"},
		{[]string{"host", "revoke"}, "exactly one server id"},
		{[]string{"host", "revoke", "{x}"}, "must be 1-128 characters"},
		{[]string{"host", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"host", "add", "web-1", "--rotat"}, "flag provided but not defined"},
	} {
		_, _, err := cli(t, env, tc.args...)
		wantUsage(t, err, tc.msg)
	}

	// Redis unreachable: a clear failure naming the setting, without the
	// password from the URL, and quickly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	down := map[string]string{"VITALS_REDIS_URL": "redis://user:s3cret-pw@" + addr}
	for _, args := range [][]string{{"host", "add", "web-1"}, {"host", "list"}, {"host", "revoke", "web-1"}} {
		_, _, err := cli(t, down, args...)
		wantFailure(t, err, "VITALS_REDIS_URL")
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("%v: error leaks the Redis password: %v", args, err)
		}
	}
	// A password with characters that must be percent-encoded and are
	// not: the URL cannot be parsed, and still no part of it is shown.
	for _, u := range []string{"redis://:s3c#ret-pw@" + addr, "redis://:s3c?ret-pw@" + addr, "redis://:s3c%ret-pw@" + addr, "redis://:s3c/ret-pw@" + addr} {
		_, _, err := cli(t, map[string]string{"VITALS_REDIS_URL": u}, "host", "list")
		wantFailure(t, err, "VITALS_REDIS_URL")
		if strings.Contains(err.Error(), "s3c") || strings.Contains(err.Error(), "ret-pw") {
			t.Errorf("unencoded password: error leaks it: %v", err)
		}
	}
}

// failWriter is a stdout that cannot be written, like a redirect onto a full
// disk.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// The key is shown only once: if it cannot be written, host add and token
// issue must fail rather than exit 0 with the key lost.
func TestOutputWriteErrorFails(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	getenv := func(k string) string { return env[k] }
	var stderr strings.Builder
	if err := run(t.Context(), []string{"host", "add", "web-9"}, getenv, failWriter{}, &stderr); err == nil {
		t.Errorf("host add with an unwritable stdout: nil error; stderr %q", stderr.String())
	}
	env["VITALS_JWT_SECRET"] = testSecret
	if err := run(t.Context(), []string{"token", "issue", "--servers", "web-9"}, getenv, failWriter{}, &stderr); err == nil {
		t.Errorf("token issue with an unwritable stdout: nil error; stderr %q", stderr.String())
	}
}
