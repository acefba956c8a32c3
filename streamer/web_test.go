package streamer_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/vitals-dev/vitals/streamer"
)

// Issue 12 item 10: the page may not be framed, and may connect only to its
// own origin (plus the REST API's, when VITALS_API_BASE names another).
// Before, connect-src allowed any ws:, wss:, http: and https: URL and
// nothing forbade framing.
func TestPageSecurityHeaders(t *testing.T) {
	for _, tc := range []struct {
		apiBase, connect string
	}{
		{"", "connect-src 'self';"},
		{"https://api.example.com/prod", "connect-src 'self' https://api.example.com;"},
	} {
		e := newEnv(t, streamer.Config{APIBase: tc.apiBase})
		for _, path := range []string{"/", "/app.js"} {
			resp, err := http.Get(e.http.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, tc.connect) {
				t.Errorf("api base %q, %s: CSP %q, want frame-ancestors 'none' and %q", tc.apiBase, path, csp, tc.connect)
			}
			if got := resp.Header.Get("X-Frame-Options"); got != "DENY" {
				t.Errorf("%s: X-Frame-Options %q", path, got)
			}
		}
	}
}
