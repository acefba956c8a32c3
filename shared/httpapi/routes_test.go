package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUnroutedRequestsAnswerJSON: whatever method and path reach a
// function (API Gateway sends every request no other route matches to the
// query function, its $default route), the answer is the documented JSON
// error: 405 with Allow for a path of the route table asked with a method
// no function serves there (GET /api/ingest: Allow: POST), 404 naming the
// right function for a method another function serves, 404 "no such
// route" for anything else. Real sockets, real handlers.
func TestUnroutedRequestsAnswerJSON(t *testing.T) {
	e := newEnv(t)
	servers := map[string]*httptest.Server{"query": httptest.NewServer(e.query), "ingest": httptest.NewServer(e.ingest)}
	for _, s := range servers {
		t.Cleanup(s.Close)
	}
	tests := []struct {
		fn, method, path string
		status           int
		allow, msg       string
	}{
		{"query", "GET", "/api/ingest", 405, "POST", "method GET not allowed; use POST"},
		{"query", "PUT", "/api/ingest", 405, "POST", ""},
		{"query", "HEAD", "/api/ingest", 405, "POST", ""},
		{"query", "POST", "/api/servers", 405, "GET, HEAD", "use GET, HEAD"},
		{"query", "DELETE", "/api/servers/web-1/metrics/latest", 405, "GET, HEAD", ""},
		{"query", "PATCH", "/api/instances/" + instA + "/monitoring/metrics", 405, "GET, HEAD", ""},
		{"query", "POST", "/api/health/ws", 405, "GET, HEAD", ""},
		{"query", "POST", "/api/ingest", 404, "", "served by the ingest function"},
		{"query", "GET", "/api/health/ws", 404, "", "served by the streamer"},
		{"query", "GET", "/api/servers/web-1/metrics/stream", 404, "", "served by the streamer"},
		{"query", "GET", "/", 404, "", "no such route"},
		{"query", "GET", "/api/nope", 404, "", "no such route"},
		{"query", "POST", "/api/servers/", 404, "", "no such route"},
		{"query", "OPTIONS", "/index.html", 404, "", "no such route"},
		{"ingest", "GET", "/api/ingest", 405, "POST", "use POST"},
		{"ingest", "GET", "/api/servers", 404, "", "served by the query function"},
		{"ingest", "POST", "/api/servers", 405, "GET, HEAD", ""},
		{"ingest", "GET", "/api/nope", 404, "", "no such route"},
	}
	for _, tc := range tests {
		t.Run(tc.fn+" "+tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, servers[tc.fn].URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.method == http.MethodHead {
				if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
					t.Fatalf("%d Allow %q, want %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"), tc.status, tc.allow)
				}
				return
			}
			res := decode(t, resp.StatusCode, resp.Header, raw)
			res.want(t, tc.status, tc.msg)
			if got := res.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if strings.Contains(res.Raw, `"message"`) {
				t.Errorf("gateway-style body %s", res.Raw)
			}
		})
	}
}
