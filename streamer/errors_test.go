package streamer_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/streamer"
)

// One failure has one status and one text on REST (the query function on
// the same store), SSE and the WebSocket ("error: " + the REST text).
func TestErrorsAgreeAcrossTransports(t *testing.T) {
	e := newEnv(t, streamer.Config{})
	at := time.Now().Add(-time.Minute)
	e.ingest("web-1", sample(at, 10))
	e.ingest("db-1", sample(at, 10))
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	query := httpapi.NewQuery(httpapi.QueryDeps{Store: e.store, Verifier: v})

	web, all := token(t, "web-1"), token(t, "*")
	expired, err := authIssue(time.Now().Add(-2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dbApp := metric.InstanceUUID("db-1", "app")
	unknown := metric.InstanceUUID("web-1", "nosuch")
	for _, tc := range []struct {
		name, tok, target, id string
		status                int
		msg                   string
	}{
		{"malformed token", "nope", "server", "web-1", 401, "invalid token: malformed"},
		{"expired token", expired, "server", "web-1", 401, "invalid token: expired"},
		{"server out of scope", web, "server", "db-1", 403, `token may not read server "db-1"`},
		{"instance out of scope", web, "instance", dbApp, 403, "token may not read instance " + dbApp},
		{"unknown instance, scoped token", web, "instance", unknown, 403, "token may not read instance " + unknown},
		{"unknown instance, every server", all, "instance", unknown, 404, "instance " + unknown + " not found"},
		{"unknown server, every server", all, "server", "nosuch", 404, "server not found"},
		{"bad server id", web, "server", "a*b", 400, `server id "a*b": must be 1-128 characters of letters, digits, '.', '_' or '-'`},
		{"bad instance id", web, "instance", "nope", 400, `instance id "nope": must be a UUID`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := "/api/servers/" + tc.id + "/metrics"
			if tc.target == "instance" {
				base = "/api/instances/" + tc.id + "/monitoring/metrics"
			}

			req := httptest.NewRequest(http.MethodGet, base+"/latest", nil)
			req.Header.Set("Authorization", "Bearer "+tc.tok)
			rec := httptest.NewRecorder()
			query.ServeHTTP(rec, req)
			checkJSONError(t, "REST", rec.Code, rec.Body.String(), tc.status, tc.msg)

			resp, _ := e.sse(base+"/stream", tc.tok)
			body, _ := io.ReadAll(resp.Body)
			checkJSONError(t, "SSE", resp.StatusCode, string(body), tc.status, tc.msg)

			c := e.dial()
			got := c.ask("auth " + tc.tok)
			if got == "ok" {
				got = c.ask("subscribe " + tc.target + " " + tc.id)
			}
			if want := "error: " + tc.msg; got != want {
				t.Errorf("WebSocket: %q, want %q", got, want)
			}
		})
	}
}

func checkJSONError(t *testing.T, transport string, status int, body string, wantStatus int, wantMsg string) {
	t.Helper()
	var out struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || status != wantStatus || out.Error != wantMsg {
		t.Errorf("%s: %d %q, want %d %q", transport, status, body, wantStatus, wantMsg)
	}
}
