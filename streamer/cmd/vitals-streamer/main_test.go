package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// start runs the command on 127.0.0.1:0 with env and returns its base URL
// once it listens, and the channel run's result arrives on.
func start(ctx context.Context, t *testing.T, env map[string]string) (string, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v (run: %v)", err, <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, "vitals-streamer listening on ")), "/"), done
}

// The real command on 127.0.0.1:0: health, a WebSocket session, and a
// graceful stop that closes the socket with 1001.
func TestRun(t *testing.T) {
	r := redistest.New(t)
	secret := "main-test-secret-0123456789abcdef"
	env := map[string]string{
		"VITALS_REDIS_URL":    r.URL,
		"VITALS_REDIS_PREFIX": r.Prefix,
		"VITALS_JWT_SECRET":   secret,
		"VITALS_LOG_FORMAT":   "text",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := start(ctx, t, env)

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	conn, _, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(base, "http")+"/api/health/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	tok, _ := auth.IssueToken([]byte(secret), []string{"*"}, time.Hour, "", "", time.Now())
	if err := conn.Write(dctx, websocket.MessageText, []byte("auth "+tok)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := conn.Read(dctx); err != nil || string(b) != "ok" {
		t.Fatalf("auth: %q %v", b, err)
	}

	cancel()
	_, _, err = conn.Read(dctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway {
		t.Fatalf("want close 1001, got %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestRunRedisDownAtStart: started while Redis is down, the streamer
// listens, /healthz says 503 and turns 200 once Redis is up, no restart.
func TestRunRedisDownAtStart(t *testing.T) {
	srv := redistest.StartServer(t)
	srv.Stop()
	env := map[string]string{"VITALS_REDIS_URL": srv.URL, "VITALS_JWT_SECRET": "main-test-secret-0123456789abcdef"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := start(ctx, t, env)
	health := func() int {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := health(); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz with Redis down: %d", code)
	}
	srv.Restart(t)
	code := 0
	for deadline := time.Now().Add(20 * time.Second); code != http.StatusOK && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		code = health()
	}
	if code != http.StatusOK {
		t.Fatalf("healthz after Redis came up: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestRunBadConfig(t *testing.T) {
	err := run(context.Background(), nil, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "VITALS_JWT_SECRET") {
		t.Fatalf("want a configuration error naming VITALS_JWT_SECRET, got %v", err)
	}
}
