package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vitals-dev/vitals/functions/internal/functest"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func openStore(t *testing.T) (*redisstore.Store, *redistest.Redis) {
	t.Helper()
	r := redistest.New(t)
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	s, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, r
}

func body(t *testing.T, n int) []byte {
	t.Helper()
	at := time.Now().Truncate(10 * time.Second)
	var ss []string
	for i := range n {
		ss = append(ss, `{"collectedAt":"`+at.Add(time.Duration(i-n+1)*10*time.Second).UTC().Format(time.RFC3339)+`",
 "cpuUsagePercent":12.5,"cpuLoad1m":0.5,"cpuLoad5m":0.4,"cpuLoad15m":0.3,
 "ramTotalBytes":8589934592,"ramUsedBytes":4294967296,"ramAvailableBytes":4294967296,"ramUsagePercent":50,
 "diskTotalBytes":107374182400,"diskUsedBytes":53687091200,"diskAvailableBytes":53687091200,"diskUsagePercent":50,
 "networkRxBytes":1000,"networkTxBytes":2000,"uptimeSeconds":3600}`)
	}
	return []byte(`{"samples":[` + strings.Join(ss, ",") + `]}`)
}

// event fills the recorded API Gateway v2 ingest event with a gzipped body
// signed now (a recorded signature would be outside the 5-minute window).
func event(t *testing.T, server string, key, raw []byte) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(raw)
	zw.Close()
	ts := time.Now().Unix()
	tmpl, err := os.ReadFile("testdata/ingest-gzip.json")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"{{SERVER}}", server,
		"{{TIMESTAMP}}", strconv.FormatInt(ts, 10),
		"{{SIGNATURE}}", auth.Sign(key, ts, server, z.Bytes()),
		"{{LENGTH}}", strconv.Itoa(z.Len()),
		"{{BODY}}", base64.StdEncoding.EncodeToString(z.Bytes()),
	).Replace(string(tmpl))
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestLambdaIngest(t *testing.T) {
	s, _ := openStore(t)
	key, err := s.AddHost(context.Background(), "web-1")
	if err != nil {
		t.Fatal(err)
	}
	proxy := lambdahttp.Proxy(httpapi.NewIngest(httpapi.IngestDeps{Store: s, Keys: s, Now: time.Now}))
	raw := body(t, 4)
	ev := event(t, "web-1", key, raw)
	for i, want := range []string{`"accepted":4,"duplicates":0`, `"accepted":0,"duplicates":4`} {
		res, err := proxy(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 202 || !strings.Contains(res.Body, want) {
			t.Fatalf("send %d: %d %s, want %s", i+1, res.StatusCode, res.Body, want)
		}
	}
	// Unknown host and a bad signature through the same path.
	res, _ := proxy(context.Background(), event(t, "ghost-1", key, raw))
	if res.StatusCode != 401 || !strings.Contains(res.Body, `"error"`) {
		t.Fatalf("unknown host: %d %s", res.StatusCode, res.Body)
	}
	res, _ = proxy(context.Background(), event(t, "web-1", []byte("wrong"), raw))
	if res.StatusCode != 401 {
		t.Fatalf("bad signature: %d %s", res.StatusCode, res.Body)
	}
	bad := event(t, "web-1", key, []byte(`{"samples":[{"collectedAt":"x"}]}`))
	res, _ = proxy(context.Background(), bad)
	if res.StatusCode != 400 || !strings.Contains(res.Body, "samples[0]") {
		t.Fatalf("invalid: %d %s", res.StatusCode, res.Body)
	}
}

// post sends raw to the ingest at addr as host web-1, signed with key.
func post(t *testing.T, addr string, key, raw []byte) *http.Response {
	t.Helper()
	ts := time.Now().Unix()
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/ingest", bytes.NewReader(raw))
	req.Header.Set(auth.HeaderServer, "web-1")
	req.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(auth.HeaderSignature, auth.Sign(key, ts, "web-1", raw))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestRunHTTP starts the real main on a free port, posts a signed batch and
// shuts down by cancelling the context.
func TestRunHTTP(t *testing.T) {
	s, r := openStore(t)
	key, err := s.AddHost(context.Background(), "web-1")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VITALS_REDIS_URL": r.URL, "VITALS_REDIS_PREFIX": r.Prefix}
	p := functest.Start(t, run, env)
	res := post(t, p.Addr, key, body(t, 2))
	var got map[string]int
	_ = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if res.StatusCode != 202 || got["accepted"] != 2 {
		t.Fatalf("%d %v", res.StatusCode, got)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if strings.Contains(p.Logs(), string(key)) {
		t.Fatal("host key logged")
	}
}

// TestRunRedisUnreachable: with Redis down at start the function still
// listens and answers a signed batch 503 + Retry-After (the reporter keeps
// it spooled and re-sends), and the Redis password is in no log line.
func TestRunRedisUnreachable(t *testing.T) {
	env := map[string]string{"VITALS_REDIS_URL": "redis://:hunter2-password@127.0.0.1:1"}
	p := functest.Start(t, run, env)
	res := post(t, p.Addr, []byte("some-key"), body(t, 1))
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("Redis down: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	// go-redis's own dial errors come through the JSON log too.
	if logs := p.Logs(); strings.Contains(logs, "hunter2") || !strings.Contains(logs, "redis not answering at start") ||
		!strings.Contains(logs, `"component":"go-redis"`) {
		t.Fatalf("logs: %s", logs)
	}
}
