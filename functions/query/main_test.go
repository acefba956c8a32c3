package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/functions/internal/functest"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

const secret = "query-test-secret-0123456789abcdef"

func seed(t *testing.T) (*redisstore.Store, *redistest.Redis) {
	t.Helper()
	r := redistest.New(t)
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	s, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	at := time.Now().Truncate(10 * time.Second)
	var samples []metric.Sample
	for i := range 3 {
		samples = append(samples, metric.Sample{
			CollectedAt: at.Add(time.Duration(i-2) * 10 * time.Second), CPUUsagePercent: 10, RAMTotalBytes: 100, RAMUsedBytes: 50,
			RAMAvailableBytes: 50, RAMUsagePercent: 50, DiskTotalBytes: 100, DiskUsedBytes: 10, DiskAvailableBytes: 90,
			DiskUsagePercent: 10, UptimeSeconds: 60,
		})
	}
	if _, err := s.Ingest(context.Background(), "web-1", samples); err != nil {
		t.Fatal(err)
	}
	return s, r
}

// event loads a recorded API Gateway HTTP API v2 event, filling {{TOKEN}}.
func event(t *testing.T, name, token string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	raw = bytes.ReplaceAll(raw, []byte("{{TOKEN}}"), []byte(token))
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestLambdaEvents drives the query handler through the very adapter main
// hands to lambda.Start, with recorded API Gateway v2 events.
func TestLambdaEvents(t *testing.T) {
	s, _ := seed(t)
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	proxy := lambdahttp.Proxy(httpapi.NewQuery(httpapi.QueryDeps{Store: s, Verifier: v, Now: time.Now}))
	tok, _ := auth.IssueToken([]byte(secret), []string{"web-1"}, time.Hour, "", "", time.Now())
	tests := []struct {
		file   string
		status int
		check  func(t *testing.T, body map[string]any)
	}{
		{"latest.json", 200, func(t *testing.T, b map[string]any) {
			if b["serverId"] != "web-1" || b["ramUsagePercent"] != 50.0 {
				t.Errorf("latest: %v", b)
			}
		}},
		{"history.json", 200, func(t *testing.T, b map[string]any) {
			if b["period"] != "6h" || b["count"] == 0.0 {
				t.Errorf("history: %v", b)
			}
		}},
		{"bad-period.json", 400, nil},
		{"no-token.json", 401, nil},
		{"healthz.json", 200, func(t *testing.T, b map[string]any) {
			if b["status"] != "ok" {
				t.Errorf("healthz: %v", b)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			res, err := proxy(context.Background(), event(t, tc.file, tok))
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, res.Body)
			}
			if ct := res.Headers["Content-Type"]; ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
				t.Fatalf("not JSON: %s", res.Body)
			}
			if tc.status >= 400 && body["error"] == nil {
				t.Fatalf("no error field: %s", res.Body)
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

// TestRunHTTP starts the real main on a free port, reads history over HTTP
// and shuts it down by cancelling the context.
func TestRunHTTP(t *testing.T) {
	_, r := seed(t)
	env := map[string]string{
		"VITALS_REDIS_URL": r.URL, "VITALS_REDIS_PREFIX": r.Prefix,
		"VITALS_JWT_SECRET": secret,
	}
	p := functest.Start(t, run, env)
	tok, _ := auth.IssueToken([]byte(secret), []string{"*"}, time.Hour, "", "", time.Now())
	req, _ := http.NewRequest("GET", "http://"+p.Addr+"/api/servers/web-1/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Count  int    `json:"count"`
		Period string `json:"period"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	res.Body.Close()
	if res.StatusCode != 200 || body.Count != 3 || body.Period != "1h" {
		t.Fatalf("status %d body %+v", res.StatusCode, body)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(p.Logs(), secret) {
		t.Fatal("the JWT secret reached the logs")
	}
}

func TestRunConfigErrors(t *testing.T) {
	err := run(context.Background(), nil, func(string) string { return "" }, os.Stdout, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), "VITALS_JWT_SECRET") {
		t.Fatalf("no secret: %v", err)
	}
	err = run(context.Background(), nil, func(k string) string {
		return map[string]string{"VITALS_JWT_SECRET": "short-secret", "VITALS_LOG_FORMAT": "xml"}[k]
	}, os.Stdout, os.Stderr)
	if err == nil || strings.Contains(err.Error(), "short-secret") || !strings.Contains(err.Error(), "VITALS_LOG_FORMAT") {
		t.Fatalf("bad config: %v", err)
	}
}

// TestRunRedisDownAtStart: a function started while Redis is down keeps
// running and answers 503 + Retry-After, then serves once Redis is up,
// without a restart (on Lambda an exit would be a crash loop).
func TestRunRedisDownAtStart(t *testing.T) {
	srv := redistest.StartServer(t)
	srv.Stop()
	env := map[string]string{"VITALS_REDIS_URL": srv.URL, "VITALS_JWT_SECRET": secret}
	p := functest.Start(t, run, env)
	if !strings.Contains(p.Logs(), "redis not answering at start") {
		t.Errorf("no warning logged: %s", p.Logs())
	}
	tok, _ := auth.IssueToken([]byte(secret), []string{"*"}, time.Hour, "", "", time.Now())
	get := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+p.Addr+"/api/servers", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := get(); res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("Redis down: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	srv.Restart(t)
	// The pool may still hold the last dial error for a moment.
	var res *http.Response
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res = get(); res.StatusCode == http.StatusOK {
			break
		}
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("after Redis came up: %d", res.StatusCode)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestRunTokenClaims: through the real main on a socket, with
// VITALS_JWT_MAX_TTL set, a token issued in the future, one whose exp is a
// string, one whose claims differ from the RFC's only by case, and one that
// lives longer than the maximum are 401; an ordinary token reads.
func TestRunTokenClaims(t *testing.T) {
	_, r := seed(t)
	p := functest.Start(t, run, map[string]string{
		"VITALS_REDIS_URL": r.URL, "VITALS_REDIS_PREFIX": r.Prefix,
		"VITALS_JWT_SECRET": secret, "VITALS_JWT_MAX_TTL": "7d",
	})
	now := time.Now()
	sign := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := now.Add(time.Hour).Unix()
	tests := []struct {
		name   string
		token  string
		status int
		msg    string
	}{
		{"ordinary", sign(jwt.MapClaims{"servers": []string{"web-1"}, "exp": exp, "iat": now.Unix()}), 200, ""},
		{"iat in the future", sign(jwt.MapClaims{"servers": []string{"web-1"}, "exp": exp, "iat": now.Add(10 * time.Minute).Unix()}), 401, "issued in the future"},
		{"exp a string", sign(jwt.MapClaims{"servers": []string{"web-1"}, "exp": strconv.FormatInt(exp, 10)}), 401, "exp"},
		{"Servers and EXP", sign(jwt.MapClaims{"Servers": []string{"web-1"}, "EXP": exp}), 401, "exp"},
		{"lifetime over VITALS_JWT_MAX_TTL", sign(jwt.MapClaims{"servers": []string{"web-1"}, "exp": now.Add(30 * 24 * time.Hour).Unix(), "iat": now.Unix()}), 401, "lifetime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+p.Addr+"/api/servers/web-1/metrics/latest", nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body map[string]any
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", res.StatusCode, tc.status, body)
			}
			if e, _ := body["error"].(string); !strings.Contains(e, tc.msg) {
				t.Errorf("error %q, want it to mention %q", e, tc.msg)
			}
		})
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}
