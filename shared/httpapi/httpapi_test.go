package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
)

func TestWriteErrorMapsKinds(t *testing.T) {
	tests := []struct {
		err    error
		status int
		msg    string
	}{
		{metric.Errorf(metric.ErrInvalid, "samples[0].x: bad"), 400, "samples[0].x: bad"},
		{metric.Errorf(metric.ErrUnauthorized, "nope"), 401, "nope"},
		{metric.Errorf(metric.ErrForbidden, "not yours"), 403, "not yours"},
		{metric.Errorf(metric.ErrNotFound, "gone"), 404, "gone"},
		{metric.Errorf(metric.ErrTooLarge, "big"), 413, "big"},
		{metric.Errorf(metric.ErrUnavailable, "redis unavailable"), 503, "redis unavailable"},
		{fmt.Errorf("wrapped: %w", metric.Errorf(metric.ErrNotFound, "gone")), 404, "gone"},
		// A bare kind wrapped with internal detail shows only the kind.
		{fmt.Errorf("dial 10.0.0.5:6379 password=hunter2: %w", metric.ErrUnavailable), 503, "service unavailable"},
		{errors.New("dial 10.0.0.5:6379 password=hunter2"), 500, "internal error"},
	}
	for _, tc := range tests {
		var logs bytes.Buffer
		w := httptest.NewRecorder()
		httpapi.WriteError(w, httptest.NewRequest("GET", "/x", nil), slog.New(slog.NewJSONHandler(&logs, nil)), tc.err)
		res := decode(t, w.Code, w.Header(), w.Body.Bytes())
		res.want(t, tc.status, "")
		if res.Body["error"] != tc.msg {
			t.Errorf("%v: message %q, want %q", tc.err, res.Body["error"], tc.msg)
		}
		if tc.status == 503 && w.Header().Get("Retry-After") != "5" {
			t.Errorf("%v: Retry-After %q", tc.err, w.Header().Get("Retry-After"))
		}
		if tc.status == 500 && !strings.Contains(logs.String(), `"err":"dial 10.0.0.5`) {
			t.Errorf("500 not logged under err: %s", logs.String())
		}
	}
}

func TestRoutesTable(t *testing.T) {
	want := map[string]string{
		"POST /api/ingest":                                  "ingest",
		"GET /api/servers":                                  "query",
		"GET /api/servers/{id}/metrics":                     "query",
		"GET /api/servers/{id}/metrics/latest":              "query",
		"GET /api/instances/{id}/monitoring/metrics":        "query",
		"GET /api/instances/{id}/monitoring/metrics/latest": "query",
		"GET /api/healthz":                                  "query",
		"GET /api/health/ws":                                "streamer",
		"GET /api/servers/{id}/metrics/stream":              "streamer",
		"GET /api/instances/{id}/monitoring/metrics/stream": "streamer",
		"GET /api/alerts/stream":                            "streamer",

		"GET /api/alerts":                       "query",
		"GET /api/alerts/rules":                 "query",
		"POST /api/alerts/rules":                "query",
		"GET /api/alerts/rules/{id}":            "query",
		"PUT /api/alerts/rules/{id}":            "query",
		"DELETE /api/alerts/rules/{id}":         "query",
		"GET /api/alerts/channels":              "query",
		"POST /api/alerts/channels":             "query",
		"DELETE /api/alerts/channels/{name}":    "query",
		"POST /api/alerts/channels/{name}/test": "query",
		"GET /api/alerts/silences":              "query",
		"POST /api/alerts/silences":             "query",
		"DELETE /api/alerts/silences/{id}":      "query",
		"GET /api/alerts/deliveries":            "query",
	}
	got := map[string]string{}
	for _, r := range httpapi.Routes() {
		got[r.Method+" "+r.Path] = r.Function
	}
	if len(got) != len(want) {
		t.Fatalf("routes %v", got)
	}
	for k, f := range want {
		if got[k] != f {
			t.Errorf("%s: function %q, want %q", k, got[k], f)
		}
	}
	// The table mounts on one mux without conflicts, as localdev does it.
	mux := http.NewServeMux()
	for _, r := range httpapi.Routes() {
		mux.Handle(r.Method+" "+r.Path, http.NotFoundHandler())
	}
}

// TestHandlersServeTheirRoutes: every table route of a function reaches a
// handler of that function (not its JSON "no such route").
func TestHandlersServeTheirRoutes(t *testing.T) {
	e := newEnv(t)
	for _, r := range httpapi.Routes() {
		var h http.Handler
		switch r.Function {
		case "ingest":
			h = e.ingest
		case "query":
			h = e.query
		default:
			continue
		}
		path := strings.ReplaceAll(r.Path, "{id}", instA)
		res := do(t, h, httptest.NewRequest(r.Method, path, nil))
		if res.Status == 404 && strings.Contains(res.Raw, "no such route") || res.Status == 405 {
			t.Errorf("%s %s: %d %s", r.Method, path, res.Status, res.Raw)
		}
	}
}

// exploding is a store whose Ping panics, to prove recovery.
type exploding struct{ metric.Store }

func (exploding) Ping(context.Context) error { panic("boom") }

func TestPanicIsJSON500(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	h := httpapi.NewQuery(httpapi.QueryDeps{Store: exploding{e.store}, Verifier: verifier(t), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	res := do(t, h, get("/api/healthz", ""))
	res.want(t, 500, "internal error")
	if !strings.Contains(logs.String(), "boom") {
		t.Fatalf("panic not logged: %s", logs.String())
	}
}
