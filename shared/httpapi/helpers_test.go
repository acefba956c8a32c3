package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
	"github.com/vitals-dev/vitals/shared/testlog"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

var secret = []byte("0123456789abcdef0123456789abcdef")

// env is a real Redis store behind both handlers.
type env struct {
	store  *redisstore.Store
	ingest http.Handler
	query  http.Handler
	logs   *testlog.Buffer
	server string
	key    []byte
}

func newEnv(t testing.TB) *env {
	t.Helper()
	r := redistest.New(t)
	return newEnvURL(t, r.URL, r.Prefix)
}

func newEnvURL(t testing.TB, url, prefix string) *env {
	t.Helper()
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = url, prefix
	store, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	logs := &testlog.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		store:  store,
		ingest: httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Logger: logger, Now: time.Now}),
		query:  httpapi.NewQuery(httpapi.QueryDeps{Store: store, Verifier: v, Logger: logger, Now: time.Now}),
		logs:   logs,
		server: "web-1",
	}
	e.key, err = store.AddHost(context.Background(), e.server)
	if err != nil {
		t.Fatal(err)
	}
	// instA is a configured (not derived) id: an operator binds it.
	if _, err := store.Bind(context.Background(), e.server, instA, "db"); err != nil {
		t.Fatal(err)
	}
	return e
}

const (
	instA = "0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7b"
)

// sample is a complete, valid wire sample at t.
func sample(t time.Time) map[string]any {
	return map[string]any{
		"collectedAt":        t.UTC().Format(time.RFC3339),
		"cpuUsagePercent":    12.5,
		"cpuLoad1m":          0.5,
		"cpuLoad5m":          0.25,
		"cpuLoad15m":         0.1,
		"ramTotalBytes":      8589934592,
		"ramUsedBytes":       4294967296,
		"ramAvailableBytes":  4294967296,
		"ramUsagePercent":    50,
		"diskTotalBytes":     107374182400,
		"diskUsedBytes":      53687091200,
		"diskAvailableBytes": 53687091200,
		"diskUsagePercent":   50,
		"networkRxBytes":     1000,
		"networkTxBytes":     2000,
		"uptimeSeconds":      3600,
		"instances": []map[string]any{{
			"instanceId": instA, "name": "db", "cpuUsagePercent": 1.5,
			"memoryUsedBytes": 1048576, "memoryLimitBytes": 2097152, "memoryUsagePercent": 50,
			"diskReadBytes": 10, "diskWriteBytes": 20,
		}},
	}
}

// batch encodes n samples 10 s apart ending now.
func batch(tb testing.TB, n int, mutate func(i int, s map[string]any)) []byte {
	tb.Helper()
	now := time.Now().Truncate(10 * time.Second)
	var ss []map[string]any
	for i := range n {
		s := sample(now.Add(-time.Duration(n-1-i) * 10 * time.Second))
		if mutate != nil {
			mutate(i, s)
		}
		ss = append(ss, s)
	}
	b, err := json.Marshal(map[string]any{"samples": ss})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func gz(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// signed builds a POST /api/ingest of body (sent as is) signed with key.
func signed(server string, key, body []byte, gzipped bool) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/ingest", bytes.NewReader(body))
	ts := time.Now().Unix()
	r.Header.Set(auth.HeaderServer, server)
	r.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
	r.Header.Set(auth.HeaderSignature, auth.Sign(key, ts, server, body))
	r.Header.Set("Content-Type", "application/json")
	if gzipped {
		r.Header.Set("Content-Encoding", "gzip")
	}
	return r
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func do(tb testing.TB, h http.Handler, r *http.Request) response {
	tb.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return decode(tb, w.Code, w.Header(), w.Body.Bytes())
}

func decode(tb testing.TB, status int, h http.Header, raw []byte) response {
	tb.Helper()
	res := response{Status: status, Header: h, Raw: string(raw)}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("status %d: Content-Type %q, want application/json; body %s", status, ct, raw)
	}
	if err := json.Unmarshal(raw, &res.Body); err != nil {
		tb.Fatalf("status %d: body is not a JSON object: %v: %s", status, err, raw)
	}
	if _, health := res.Body["status"]; status >= 400 && !health {
		msg, ok := res.Body["error"].(string)
		if !ok || msg == "" || len(res.Body) != 1 {
			tb.Fatalf("status %d: error body must be exactly {\"error\": \"...\"}, got %s", status, raw)
		}
	}
	return res
}

func (r response) want(tb testing.TB, status int, errContains string) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("status %d, want %d; body %s", r.Status, status, r.Raw)
	}
	if errContains != "" && !strings.Contains(fmt.Sprint(r.Body["error"]), errContains) {
		tb.Fatalf("error %q does not mention %q", r.Body["error"], errContains)
	}
}

func token(tb testing.TB, servers ...string) string {
	tb.Helper()
	tok, err := auth.IssueToken(secret, servers, time.Hour, "", "", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func get(path, tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// ingestOK posts n samples for e.server and checks the 202.
func (e *env) ingestOK(tb testing.TB, n int) response {
	tb.Helper()
	res := do(tb, e.ingest, signed(e.server, e.key, gz(tb, batch(tb, n, nil)), true))
	res.want(tb, http.StatusAccepted, "")
	return res
}
