package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/functions/internal/functest"
	"github.com/vitals-dev/vitals/functions/internal/function"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpserve/servetest"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/redistest"
)

// stallLimit is how long a request may take against a Redis that never
// answers before the test calls it a hang. The promise is an answer within
// 3 s; the store's budget is 2.5 s (measured 2.0-2.5 s per route), and
// go-redis's own defaults took 5 s (healthz, latest, ingest) to 20 s
// (history, servers). The margin is for a loaded machine.
const stallLimit = 4500 * time.Millisecond

// stallRoutes are the query function's routes that need Redis.
var stallRoutes = []string{
	"/api/healthz",
	"/api/servers",
	"/api/servers/web-1/metrics?period=1h",
	"/api/servers/web-1/metrics/latest",
	"/api/instances/6f1c1e9e-8d0b-5b4a-9c3e-2f1a0b9c8d7e/monitoring/metrics?period=1h",
	"/api/instances/6f1c1e9e-8d0b-5b4a-9c3e-2f1a0b9c8d7e/monitoring/metrics/latest",
}

// TestStalledRedisAnswers503 runs the real function (net/http) against a
// Redis that accepts connections and never answers, with a URL that sets no
// timeout (as the README's does): every route answers 503 + Retry-After
// within the bound, all at once, and only one warning is logged for them.
func TestStalledRedisAnswers503(t *testing.T) {
	stalled := redistest.StartStalled(t)
	p := functest.Start(t, run, map[string]string{"VITALS_REDIS_URL": stalled.URL, "VITALS_JWT_SECRET": secret})
	tok, _ := auth.IssueToken([]byte(secret), []string{"*"}, time.Hour, "", "", time.Now())
	client := &http.Client{Timeout: stallLimit}
	var wg sync.WaitGroup
	for _, path := range stallRoutes {
		wg.Go(func() {
			start := time.Now()
			req, _ := http.NewRequest("GET", "http://"+p.Addr+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := client.Do(req)
			if err != nil {
				t.Errorf("%s: %v (a hang: no answer within %s)", path, err, stallLimit)
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"error"`) {
				t.Errorf("%s: %d Retry-After %q %s, want 503 + Retry-After", path, res.StatusCode, res.Header.Get("Retry-After"), b)
			}
			t.Logf("%s: %d after %s", path, res.StatusCode, time.Since(start).Round(time.Millisecond))
		})
	}
	wg.Wait()
	if err := p.Stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := strings.Count(p.Logs(), `"msg":"dependency unavailable"`); n > 2 {
		t.Errorf("%d warnings for one stall, want one per cause and interval: %s", n, p.Logs())
	}
}

// TestLambdaStalledRedis: the same through the Lambda path, the handler
// function.Setup builds for both runtimes driven by the exact adapter
// lambda.Start gets, with recorded API Gateway events.
func TestLambdaStalledRedis(t *testing.T) {
	stalled := redistest.StartStalled(t)
	env := map[string]string{"VITALS_REDIS_URL": stalled.URL, "VITALS_JWT_SECRET": secret}
	h, _, _, closeFn, err := function.Setup(context.Background(), "query", func(k string) string { return env[k] }, io.Discard, build)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	proxy := lambdahttp.Proxy(h)
	tok, _ := auth.IssueToken([]byte(secret), []string{"*"}, time.Hour, "", "", time.Now())
	var wg sync.WaitGroup
	for _, file := range []string{"healthz.json", "history.json", "latest.json"} {
		wg.Go(func() {
			// The function's own Lambda timeout is 10 s; a hang shows as
			// this context ending first.
			ctx, cancel := context.WithTimeout(context.Background(), stallLimit)
			defer cancel()
			start := time.Now()
			res, err := proxy(ctx, event(t, file, tok))
			if err != nil {
				t.Errorf("%s: %v", file, err)
				return
			}
			if ctx.Err() != nil {
				t.Errorf("%s: answered only after %s", file, time.Since(start))
			}
			if res.StatusCode != http.StatusServiceUnavailable || res.Headers["Retry-After"] == "" {
				t.Errorf("%s: %d %v %s, want 503 + Retry-After", file, res.StatusCode, res.Headers, res.Body)
			}
			t.Logf("%s: %d after %s", file, res.StatusCode, time.Since(start).Round(time.Millisecond))
		})
	}
	wg.Wait()
}

// TestServerBounds: the function's server closes a connection that sends
// nothing, half a header, or a Content-Length and no body, within the
// shared bounds (shared/httpserve).
func TestServerBounds(t *testing.T) {
	r := redistest.New(t)
	p := functest.Start(t, run, map[string]string{"VITALS_REDIS_URL": r.URL, "VITALS_REDIS_PREFIX": r.Prefix, "VITALS_JWT_SECRET": secret})
	servetest.AssertClosesSilent(t, p.Addr, "GET", "/api/healthz")
}
