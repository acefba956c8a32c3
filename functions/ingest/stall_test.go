package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/functions/internal/functest"
	"github.com/vitals-dev/vitals/functions/internal/function"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpserve/servetest"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

// stallLimit is how long a request may take against a Redis that never
// answers before the test calls it a hang. The promise is an answer within
// 3 s; the store's budget is 2.5 s (measured 2.0-2.5 s per route), and
// go-redis's own defaults took 5 s (healthz, latest, ingest) to 20 s
// (history, servers). The margin is for a loaded machine.
const stallLimit = 4500 * time.Millisecond

// TestStalledRedisAnswers503: the real function (net/http) against a Redis
// that accepts and never answers, URL without timeouts: a signed batch gets
// 503 + Retry-After (the reporter keeps it and re-sends) within the bound.
func TestStalledRedisAnswers503(t *testing.T) {
	stalled := redistest.StartStalled(t)
	p := functest.Start(t, run, map[string]string{"VITALS_REDIS_URL": stalled.URL})
	raw := body(t, 3)
	ts := time.Now().Unix()
	req, _ := http.NewRequest("POST", "http://"+p.Addr+"/api/ingest", bytes.NewReader(raw))
	req.Header.Set(auth.HeaderServer, "web-1")
	req.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(auth.HeaderSignature, auth.Sign([]byte("k"), ts, "web-1", raw))
	start := time.Now()
	res, err := (&http.Client{Timeout: stallLimit}).Do(req)
	if err != nil {
		t.Fatalf("no answer within %s: %v", stallLimit, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("%d Retry-After %q %s, want 503 + Retry-After", res.StatusCode, res.Header.Get("Retry-After"), b)
	}
	t.Logf("POST /api/ingest: %d after %s", res.StatusCode, time.Since(start).Round(time.Millisecond))
}

// TestLambdaStalledRedis: the same through the Lambda adapter, with the
// handler function.Setup builds for both runtimes.
func TestLambdaStalledRedis(t *testing.T) {
	stalled := redistest.StartStalled(t)
	env := map[string]string{"VITALS_REDIS_URL": stalled.URL}
	h, _, _, closeFn, err := function.Setup(context.Background(), "ingest", func(k string) string { return env[k] }, io.Discard, build)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), stallLimit)
	defer cancel()
	start := time.Now()
	res, err := lambdahttp.Proxy(h)(ctx, event(t, "web-1", []byte("k"), body(t, 3)))
	if err != nil || ctx.Err() != nil {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
	if res.StatusCode != http.StatusServiceUnavailable || res.Headers["Retry-After"] == "" {
		t.Fatalf("%d %v %s, want 503 + Retry-After", res.StatusCode, res.Headers, res.Body)
	}
	t.Logf("Lambda POST /api/ingest: %d after %s", res.StatusCode, time.Since(start).Round(time.Millisecond))
}

// TestServerBounds: the function's server closes a connection that sends
// nothing, half a header, or a Content-Length and no body, within the
// shared bounds (shared/httpserve).
func TestServerBounds(t *testing.T) {
	r := redistest.New(t)
	p := functest.Start(t, run, map[string]string{"VITALS_REDIS_URL": r.URL, "VITALS_REDIS_PREFIX": r.Prefix})
	servetest.AssertClosesSilent(t, p.Addr, "POST", "/api/ingest")
}

// TestFullRedis: a Redis at maxmemory with noeviction answers every batch
// 503 + Retry-After (the reporter keeps it spooled), logged as one warning
// per interval, never as an internal error; once memory is raised the same
// batch is stored.
func TestFullRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	s, err := openFull(t, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.AddHost(context.Background(), "web-1")
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	setMax := func(v string) {
		t.Helper()
		if err := admin.ConfigSet(context.Background(), "maxmemory", v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.ConfigSet(context.Background(), "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	p := functest.Start(t, run, map[string]string{"VITALS_REDIS_URL": srv.URL})
	raw := body(t, 3)
	setMax("1")
	for i := range 5 {
		res := post(t, p.Addr, key, raw)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
			t.Fatalf("send %d to a full Redis: %d Retry-After %q %s", i+1, res.StatusCode, res.Header.Get("Retry-After"), b)
		}
	}
	setMax("0")
	res := post(t, p.Addr, key, raw)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"accepted":3`) {
		t.Fatalf("after raising maxmemory: %d %s", res.StatusCode, b)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	logs := p.Logs()
	if n := strings.Count(logs, `"msg":"dependency unavailable"`); n != 1 || strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("want one warning for five 503s and no error, got %d: %s", n, logs)
	}
}

func openFull(t *testing.T, url string) (*redisstore.Store, error) {
	t.Helper()
	cfg := redisstore.DefaultConfig()
	cfg.URL = url
	s, err := redisstore.Open(context.Background(), cfg, nil)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}
