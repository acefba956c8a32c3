package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	goredis "github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redistest"
	"github.com/vitals-dev/vitals/shared/testlog"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestStackServesRealData runs the whole local stack against a real Redis and
// checks that the built-in reporter's samples of this very machine come back
// over REST, that the page is served, and that the printed token works.
func TestStackServesRealData(t *testing.T) {
	r := redistest.New(t)
	addr, out := startStack(t, r, "localdev-test", "1s")

	base := "http://" + addr
	var token string
	waitFor(t, "the stack to print its token", func() bool {
		for _, line := range strings.Split(out.String(), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "token:"); ok {
				token = strings.Fields(v)[0]
				return true
			}
		}
		return false
	})

	var latest metric.ServerMetric
	waitFor(t, "the local reporter's first sample", func() bool {
		code, body := get(t, base+"/api/servers/localdev-test/metrics/latest", token)
		return code == http.StatusOK && json.Unmarshal(body, &latest) == nil
	})
	if latest.ServerID != "localdev-test" || latest.RAMTotalBytes == 0 || latest.DiskTotalBytes == 0 {
		t.Errorf("latest sample does not look like this machine: %+v", latest)
	}

	var servers struct {
		Servers []struct {
			ID        string `json:"id"`
			Instances []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"instances"`
		} `json:"servers"`
	}
	waitFor(t, "the localdev instance to be listed", func() bool {
		code, body := get(t, base+"/api/servers", token)
		if code != http.StatusOK || json.Unmarshal(body, &servers) != nil {
			return false
		}
		for _, s := range servers.Servers {
			for _, in := range s.Instances {
				if s.ID == "localdev-test" && in.Name == "localdev" && in.ID == metric.InstanceUUID("localdev-test", "localdev") {
					return true
				}
			}
		}
		return false
	})

	if code, _ := get(t, base+"/api/servers/localdev-test/metrics?period=1h", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: got %d, want 401", code)
	}
	if code, body := get(t, base+"/", ""); code != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("live-view page: got %d", code)
	}
	if code, _ := get(t, base+"/api/healthz", ""); code != http.StatusOK {
		t.Errorf("healthz: got %d", code)
	}

	// A wrong method on any function's path gets that function's JSON 405,
	// not ServeMux's plain-text one nor another function's 404.
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/api/servers"},
		{http.MethodGet, "/api/ingest"},
		{http.MethodPost, "/api/health/ws"},
		{http.MethodPost, "/api/servers/localdev-test/metrics/stream"},
	} {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !json.Valid(b) || resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: got %d %q (Allow %q), want a JSON 405 with Allow", c.method, c.path, resp.StatusCode, b, resp.Header.Get("Allow"))
		}
	}
	if code, body := get(t, base+"/api/nope", token); code != http.StatusNotFound || !json.Valid(body) {
		t.Errorf("GET /api/nope: got %d %q, want a JSON 404", code, body)
	}

	// The streamer shares the port: a live sample arrives over the WebSocket.
	wctx, wcancel := context.WithTimeout(t.Context(), time.Minute)
	defer wcancel()
	ws, _, err := websocket.Dial(wctx, "ws://"+addr+"/api/health/ws", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.CloseNow()
	for _, cmd := range []string{"auth " + token, "subscribe server localdev-test"} {
		if err := ws.Write(wctx, websocket.MessageText, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := ws.Read(wctx); err != nil || string(msg) != "ok" {
			t.Fatalf("%s: got %q, %v", strings.Fields(cmd)[0], msg, err)
		}
	}
	_, msg, err := ws.Read(wctx)
	if err != nil || !strings.Contains(string(msg), `"type":"server"`) || !strings.Contains(string(msg), `"localdev-test"`) {
		t.Errorf("first live message: %q, %v", msg, err)
	}
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitFor polls cond; the bound only keeps a broken build from hanging CI.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
}

// TestProvisionRedisKeepsHistory: with no VITALS_REDIS_URL, localdev starts
// the redis-server on PATH with its data under the (relative) state dir, and
// what was written is there again after a restart.
func TestProvisionRedisKeepsHistory(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("no redis-server on PATH") // redistest.Main already fails CI without one
	}
	t.Chdir(t.TempDir())
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	for i, want := range []string{"", "kept"} {
		r, err := provisionRedis(ctx, "", filepath.Join(".localdev", "redis"), log)
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind != "redis-server" {
			r.stop()
			t.Fatalf("run %d: got %s Redis, want redis-server", i, r.Kind)
		}
		opt, _ := goredis.ParseURL(r.URL)
		c := goredis.NewClient(opt)
		got, err := c.Get(ctx, "k").Result()
		if err != nil && !errors.Is(err, goredis.Nil) {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("run %d: k = %q, want %q", i, got, want)
		}
		if err := c.Set(ctx, "k", "kept", 0).Err(); err != nil {
			t.Fatal(err)
		}
		c.Close()
		r.stop() // SIGTERM: redis-server saves its snapshot
	}
}

// TestRedisServerFailureIsExplained: a redis-server that exits at once is
// reported with what it said, without waiting out the start deadline.
func TestRedisServerFailureIsExplained(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "redis-server")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'FATAL: cannot open the log file' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := startRedisServer(context.Background(), bin, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "cannot open the log file") {
		t.Fatalf("got %v, want redis-server's own message", err)
	}
}

// startStack runs localdev (no subcommand) on a free port against r as
// serverID, reporting every interval, until the test ends; out collects
// its stdout (the banner).
func startStack(t *testing.T, r *redistest.Redis, serverID, interval string) (addr string, out *testlog.Buffer) {
	t.Helper()
	addr = freeAddr(t)
	env := map[string]string{
		"VITALS_ADDR":         addr,
		"VITALS_REDIS_URL":    r.URL,
		"VITALS_REDIS_PREFIX": r.Prefix,
		"VITALS_SERVER_ID":    serverID,
		"VITALS_INTERVAL":     interval,
		"VITALS_LOCALDEV_DIR": t.TempDir(),
		"VITALS_JWT_SECRET":   "test-secret-test-secret-test-secret",
	}
	ctx, cancel := context.WithCancel(context.Background())
	out = &testlog.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return addr, out
}
