package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/redistest"
)

// seedMetric is every ServerMetric field the oCore seed requires.
var seedServerFields = []string{"id", "serverId", "collectedAt", "cpuUsagePercent", "cpuLoad1m", "cpuLoad5m", "cpuLoad15m",
	"ramTotalBytes", "ramUsedBytes", "ramAvailableBytes", "ramUsagePercent", "diskTotalBytes", "diskUsedBytes",
	"diskAvailableBytes", "diskUsagePercent", "networkRxBytes", "networkTxBytes", "uptimeSeconds"}

var seedInstanceFields = []string{"id", "instanceId", "serverId", "name", "collectedAt", "cpuUsagePercent",
	"memoryUsedBytes", "memoryLimitBytes", "memoryUsagePercent", "diskReadBytes", "diskWriteBytes"}

func hasFields(t *testing.T, m any, fields []string) {
	t.Helper()
	obj, ok := m.(map[string]any)
	if !ok {
		t.Fatalf("not an object: %v", m)
	}
	for _, f := range fields {
		if _, ok := obj[f]; !ok {
			t.Errorf("field %q missing from %v", f, obj)
		}
	}
}

func TestQueryRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ingestOK(t, 3)
	dbKey, err := e.store.AddHost(context.Background(), "db-1")
	if err != nil {
		t.Fatal(err)
	}
	do(t, e.ingest, signed("db-1", dbKey, batch(t, 1, func(_ int, s map[string]any) { delete(s, "instances") }), false)).want(t, 202, "")

	all, web, db := token(t, "*"), token(t, "web-1"), token(t, "db-1")

	t.Run("server history", func(t *testing.T) {
		for _, path := range []string{"/api/servers/web-1/metrics", "/api/servers/web-1/metrics?period=1h", "/api/servers/web-1/metrics?period=7d"} {
			res := do(t, e.query, get(path, web))
			res.want(t, 200, "")
			ms := res.Body["metrics"].([]any)
			if len(ms) == 0 || res.Body["count"] != float64(len(ms)) {
				t.Fatalf("%s: %s", path, res.Raw)
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Error("Cache-Control")
			}
			hasFields(t, ms[0], seedServerFields)
		}
		if p := do(t, e.query, get("/api/servers/web-1/metrics", web)).Body["period"]; p != "1h" {
			t.Fatalf("default period %v", p)
		}
	})
	t.Run("server latest", func(t *testing.T) {
		res := do(t, e.query, get("/api/servers/web-1/metrics/latest", web))
		res.want(t, 200, "")
		hasFields(t, any(res.Body), seedServerFields)
		if res.Body["serverId"] != "web-1" {
			t.Fatal(res.Raw)
		}
	})
	t.Run("instance history and latest", func(t *testing.T) {
		res := do(t, e.query, get("/api/instances/"+instA+"/monitoring/metrics?period=6h", web))
		res.want(t, 200, "")
		ms := res.Body["metrics"].([]any)
		if len(ms) == 0 || res.Body["period"] != "6h" || res.Body["count"] != float64(len(ms)) {
			t.Fatal(res.Raw)
		}
		hasFields(t, ms[0], seedInstanceFields)
		// Upper case UUIDs are the same instance.
		res = do(t, e.query, get("/api/instances/"+strings.ToUpper(instA)+"/monitoring/metrics/latest", web))
		res.want(t, 200, "")
		hasFields(t, any(res.Body), seedInstanceFields)
	})
	t.Run("servers list is scoped", func(t *testing.T) {
		res := do(t, e.query, get("/api/servers", all))
		res.want(t, 200, "")
		if n := len(res.Body["servers"].([]any)); n != 2 {
			t.Fatalf("* sees %d servers: %s", n, res.Raw)
		}
		res = do(t, e.query, get("/api/servers", db))
		list := res.Body["servers"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["id"] != "db-1" {
			t.Fatalf("db token sees %s", res.Raw)
		}
		if ins := list[0].(map[string]any)["instances"]; ins == nil {
			t.Fatal("instances must be [] not null")
		}
		res = do(t, e.query, get("/api/servers", token(t, "nothing-here")))
		if !strings.Contains(res.Raw, `"servers":[]`) {
			t.Fatalf("empty list must be []: %s", res.Raw)
		}
	})
	t.Run("access_token query parameter", func(t *testing.T) {
		do(t, e.query, get("/api/servers/web-1/metrics/latest?access_token="+web, "")).want(t, 200, "")
	})
	t.Run("empty window is [] not null", func(t *testing.T) {
		// A known server whose points are all older than the window.
		q := httpapi.NewQuery(httpapi.QueryDeps{Store: e.store, Verifier: verifier(t), Now: func() time.Time { return time.Now().Add(3 * time.Hour) }})
		res := do(t, q, get("/api/servers/web-1/metrics?period=1h", web))
		res.want(t, 200, "")
		if !strings.Contains(res.Raw, `"metrics":[]`) || res.Body["count"] != 0.0 {
			t.Fatal(res.Raw)
		}
	})

	expired, _ := auth.IssueToken(secret, []string{"*"}, time.Minute, "", "", time.Now().Add(-time.Hour))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"servers": []string{"*"}, "exp": time.Now().Add(time.Hour).Unix()})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	otherSecret, _ := auth.IssueToken([]byte("another-secret-of-32-bytes......"), []string{"*"}, time.Hour, "", "", time.Now())
	const unknownInst = "5dd858c8-3e84-56db-bed9-eea31d3f8f31"

	tests := []struct {
		name, path, tok string
		status          int
		msg             string
	}{
		{"no token", "/api/servers/web-1/metrics", "", 401, "missing token"},
		{"no token, list", "/api/servers", "", 401, ""},
		{"garbage token", "/api/servers/web-1/metrics", "abc.def.ghi", 401, "invalid token"},
		{"expired", "/api/servers/web-1/metrics", expired, 401, "expired"},
		{"alg none", "/api/servers/web-1/metrics", noneTok, 401, "none"},
		{"other secret", "/api/servers/web-1/metrics", otherSecret, 401, "signature"},
		{"out of scope server", "/api/servers/web-1/metrics", db, 403, "web-1"},
		{"out of scope latest", "/api/servers/web-1/metrics/latest", db, 403, ""},
		{"out of scope unknown server", "/api/servers/nope-1/metrics", db, 403, ""},
		{"out of scope instance", "/api/instances/" + instA + "/monitoring/metrics", db, 403, ""},
		{"unknown instance, scoped token", "/api/instances/" + unknownInst + "/monitoring/metrics/latest", db, 403, ""},
		{"unknown instance", "/api/instances/" + unknownInst + "/monitoring/metrics", all, 404, "not found"},
		{"unknown server", "/api/servers/nope-1/metrics", all, 404, "not found"},
		{"unknown server latest", "/api/servers/nope-1/metrics/latest", all, 404, ""},
		{"bad period", "/api/servers/web-1/metrics?period=2h", web, 400, "period must be one of 1h, 6h, 24h, 7d"},
		{"bad instance period", "/api/instances/" + instA + "/monitoring/metrics?period=1y", web, 400, "period"},
		{"non-UUID instance", "/api/instances/db/monitoring/metrics", all, 400, "UUID"},
		{"non-UUID instance latest", "/api/instances/123/monitoring/metrics/latest", all, 400, "UUID"},
		{"bad server id", "/api/servers/a%20b/metrics", all, 400, "server id"},
		{"unknown route", "/api/nothing", all, 404, "no such route"},
		{"streamer route is not the query function's", "/api/servers/web-1/metrics/stream", all, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, e.query, get(tc.path, tc.tok))
			res.want(t, tc.status, tc.msg)
			if tc.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("bad Authorization scheme", func(t *testing.T) {
		r := get("/api/servers", "")
		r.Header.Set("Authorization", "Basic dTpw")
		do(t, e.query, r).want(t, 401, "Bearer")
	})
	t.Run("405 with Allow", func(t *testing.T) {
		res := do(t, e.query, httptest.NewRequest(http.MethodPost, "/api/servers/web-1/metrics", nil))
		res.want(t, 405, "")
		if res.Header.Get("Allow") != "GET, HEAD" {
			t.Fatalf("Allow %q", res.Header.Get("Allow"))
		}
	})
	t.Run("healthz needs no token", func(t *testing.T) {
		res := do(t, e.query, get("/api/healthz", ""))
		res.want(t, 200, "")
		if res.Body["status"] != "ok" {
			t.Fatal(res.Raw)
		}
	})
}

func verifier(t *testing.T) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestQueryRedisDown: reads fail with 503 and Retry-After, never 500.
func TestQueryRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	e := newEnvURL(t, srv.URL, "qdown:")
	e.ingestOK(t, 1)
	srv.Stop()
	for _, path := range []string{"/api/servers/web-1/metrics", "/api/servers/web-1/metrics/latest", "/api/servers", "/api/instances/" + instA + "/monitoring/metrics"} {
		res := do(t, e.query, get(path, token(t, "*")))
		res.want(t, http.StatusServiceUnavailable, "")
		if res.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", path)
		}
	}
}
