package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpserve"
	"github.com/vitals-dev/vitals/shared/httpserve/servetest"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

const testSecret = "main-test-secret-0123456789abcdef"

// TestServerBounds: the streamer closes a connection that sends nothing,
// half a header, or a Content-Length and no body within the shared bounds
// (it held the last kind forever), while a WebSocket session and an SSE
// stream opened before them are still served after every bound has passed.
func TestServerBounds(t *testing.T) {
	r := redistest.New(t)
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	store, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	at := time.Now().Truncate(10 * time.Second)
	if _, err := store.Ingest(context.Background(), "web-1", []metric.Sample{{
		CollectedAt: at, CPUUsagePercent: 10, RAMTotalBytes: 100, RAMUsedBytes: 50, RAMAvailableBytes: 50, RAMUsagePercent: 50,
		DiskTotalBytes: 100, DiskUsedBytes: 10, DiskAvailableBytes: 90, DiskUsagePercent: 10, UptimeSeconds: 60,
	}}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VITALS_REDIS_URL": r.URL, "VITALS_REDIS_PREFIX": r.Prefix, "VITALS_JWT_SECRET": testSecret, "VITALS_LOG_FORMAT": "text"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := start(ctx, t, env)
	tok, _ := auth.IssueToken([]byte(testSecret), []string{"*"}, time.Hour, "", "", time.Now())

	// A live WebSocket viewer.
	wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer wcancel()
	ws, _, err := websocket.Dial(wctx, "ws"+strings.TrimPrefix(base, "http")+"/api/health/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(wctx, websocket.MessageText, []byte("auth "+tok)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(wctx); err != nil || string(b) != "ok" {
		t.Fatalf("auth: %q %v", b, err)
	}
	// The viewer keeps reading (it answers the streamer's pings while it
	// does), as the page does.
	msgs := make(chan string, 16)
	go func() {
		defer close(msgs)
		for {
			_, b, err := ws.Read(wctx)
			if err != nil {
				msgs <- "read error: " + err.Error()
				return
			}
			msgs <- string(b)
		}
	}()
	// A live SSE viewer, its events counted as they come.
	req, _ := http.NewRequest("GET", base+"/api/servers/web-1/metrics/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	sse, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	if sse.StatusCode != http.StatusOK {
		t.Fatalf("SSE: %d", sse.StatusCode)
	}
	var mu sync.Mutex
	var lastEvent time.Time
	sseDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(sse.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") {
				mu.Lock()
				lastEvent = time.Now()
				mu.Unlock()
			}
		}
		sseDone <- sc.Err()
	}()

	opened := time.Now()
	servetest.AssertClosesSilent(t, strings.TrimPrefix(base, "http://"), "GET", "/healthz")
	// Every bound (header, body) has passed since the viewers opened.
	if d := time.Since(opened); d < httpserve.BodyTimeout {
		time.Sleep(httpserve.BodyTimeout - d + time.Second)
	}
	if err := ws.Write(wctx, websocket.MessageText, []byte("servers")); err != nil {
		t.Fatalf("WebSocket cut by a server bound: %v", err)
	}
	if b := <-msgs; !strings.Contains(b, "web-1") {
		t.Fatalf("WebSocket after the bounds: %q", b)
	}
	// The SSE stream resends the latest every 10 s: one must arrive after
	// the bounds passed.
	checked := time.Now()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		got := lastEvent.After(checked)
		mu.Unlock()
		if got {
			break
		}
		select {
		case err := <-sseDone:
			t.Fatalf("SSE stream ended by a server bound: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no SSE event after the bounds passed")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestStalledRedis: with a Redis that accepts and never answers, /healthz
// and an SSE stream's first read answer 503 + Retry-After within the bound
// instead of waiting out go-redis's own timeouts.
func TestStalledRedis(t *testing.T) {
	stalled := redistest.StartStalled(t)
	env := map[string]string{"VITALS_REDIS_URL": stalled.URL, "VITALS_JWT_SECRET": testSecret}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := start(ctx, t, env)
	tok, _ := auth.IssueToken([]byte(testSecret), []string{"*"}, time.Hour, "", "", time.Now())
	// The promise is 3 s (the store's budget is 2.5 s); go-redis's own
	// defaults took 5 s. The margin is for a loaded machine.
	client := &http.Client{Timeout: 4500 * time.Millisecond}
	var wg sync.WaitGroup
	for _, path := range []string{"/healthz", "/api/servers/web-1/metrics/stream"} {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			start := time.Now()
			res, err := client.Do(req)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
				t.Errorf("%s: %d Retry-After %q, want 503 + Retry-After", path, res.StatusCode, res.Header.Get("Retry-After"))
			}
			t.Logf("%s: %d after %s", path, res.StatusCode, time.Since(start).Round(time.Millisecond))
		})
	}
	wg.Wait()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
