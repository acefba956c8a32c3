package sam_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/metric"
)

// The events in testdata/events are API Gateway HTTP API (payload 2.0)
// events as API Gateway and `sam local` deliver them. What must be fresh at
// test time is a placeholder, filled in by fixture.event:
//
//	$TIMESTAMP, $TIMESTAMP_STALE     unix seconds now / 10 minutes ago
//	$SIGNATURE                       auth.Sign over the body exactly as sent
//	$TOKEN, $TOKEN_OTHER, $TOKEN_ALL user tokens for [web-1], [db-9], [*]
//	$INSTANCE_ID                     UUIDv5 of web-1 + "nginx"
//	"body": "$BATCH:<name>"          testdata/batches/<name>.json with
//	                                 "$NOW-<n>s" timestamps, gzipped when the
//	                                 event says Content-Encoding: gzip, then
//	                                 base64 when isBase64Encoded
//	"body": "$RAW:<text>"            <text> as is (base64 when isBase64Encoded)
//
// A content-length header is set to the body's real length.

type fixture struct {
	st         *stack
	now        time.Time
	instanceID string
	replacer   *strings.Replacer
}

func newFixture(t *testing.T) *fixture {
	st := newStack(t)
	fx := &fixture{st: st, now: time.Now().UTC().Truncate(time.Second), instanceID: metric.InstanceUUID(st.serverID, "nginx")}
	// Longest placeholder first: Replacer tries its pairs in argument order.
	fx.replacer = strings.NewReplacer(
		"$TIMESTAMP_STALE", strconv.FormatInt(fx.now.Add(-10*time.Minute).Unix(), 10),
		"$TIMESTAMP", strconv.FormatInt(fx.now.Unix(), 10),
		"$TOKEN_OTHER", st.token(t, "db-9"),
		"$TOKEN_ALL", st.token(t, "*"),
		"$TOKEN", st.token(t, st.serverID),
		"$INSTANCE_ID", fx.instanceID,
	)
	return fx
}

var nowRel = regexp.MustCompile(`"\$NOW-(\d+)s"`)

// event loads testdata/events/<name>.json with its placeholders filled.
func (fx *fixture) event(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "events", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal([]byte(fx.replacer.Replace(string(raw))), &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var sent []byte // the body bytes as the client sent them
	switch {
	case strings.HasPrefix(ev.Body, "$BATCH:"):
		b, err := os.ReadFile(filepath.Join("testdata", "batches", strings.TrimPrefix(ev.Body, "$BATCH:")+".json"))
		if err != nil {
			t.Fatal(err)
		}
		b = nowRel.ReplaceAllFunc([]byte(fx.replacer.Replace(string(b))), func(m []byte) []byte {
			n, _ := strconv.Atoi(string(nowRel.FindSubmatch(m)[1]))
			return []byte(`"` + fx.now.Add(-time.Duration(n)*time.Second).Format(time.RFC3339) + `"`)
		})
		sent = b
		if enc := strings.ToLower(header(ev.Headers, "Content-Encoding")); enc == "gzip" {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(b)
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			sent = buf.Bytes()
		}
	case strings.HasPrefix(ev.Body, "$RAW:"):
		sent = []byte(strings.TrimPrefix(ev.Body, "$RAW:"))
	default:
		sent = []byte(ev.Body)
	}
	if ev.Body != "" {
		ev.Body = string(sent)
		if ev.IsBase64Encoded {
			ev.Body = base64.StdEncoding.EncodeToString(sent)
		}
	}
	for k, v := range ev.Headers {
		switch {
		case strings.EqualFold(k, "Content-Length"):
			ev.Headers[k] = strconv.Itoa(len(sent))
		case v == "$SIGNATURE":
			serverID := header(ev.Headers, auth.HeaderServer)
			ts, err := strconv.ParseInt(header(ev.Headers, auth.HeaderTimestamp), 10, 64)
			if err != nil {
				t.Fatalf("%s: $SIGNATURE needs a numeric %s header", name, auth.HeaderTimestamp)
			}
			key := fx.st.hostKey
			if serverID != fx.st.serverID {
				key = auth.NewHostKey() // a host Redis does not know
			}
			ev.Headers[k] = auth.Sign(key, ts, serverID, sent)
		}
	}
	if strings.Contains(ev.Body+ev.RawPath+ev.RawQueryString, "$") {
		t.Fatalf("%s: placeholder left unfilled", name)
	}
	return ev
}

// header looks a header up whatever its case, as net/http will.
func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// result is a proxied response with its JSON body decoded.
type result struct {
	events.APIGatewayV2HTTPResponse
	json map[string]any
}

func (r result) num(t *testing.T, key string) float64 {
	t.Helper()
	n, ok := r.json[key].(float64)
	if !ok {
		t.Fatalf("%q = %v, want a number; body %s", key, r.json[key], r.Body)
	}
	return n
}

func (r result) str(key string) string { s, _ := r.json[key].(string); return s }

func (r result) list(t *testing.T, key string) []any {
	t.Helper()
	l, ok := r.json[key].([]any)
	if !ok {
		t.Fatalf("%q = %v, want a list; body %s", key, r.json[key], r.Body)
	}
	return l
}

// TestLambdaEvents pushes every recorded event through the proxy that
// main hands to lambda.Start, with the real handlers and a real Redis
// behind it, and checks status, headers and JSON body. Ingest events run
// first: the query events read what they stored.
func TestLambdaEvents(t *testing.T) {
	fx := newFixture(t)
	proxies := map[string]proxyFunc{
		"ingest": lambdahttp.Proxy(fx.st.handlers[httpapi.FunctionIngest]),
		"query":  lambdahttp.Proxy(fx.st.handlers[httpapi.FunctionQuery]),
	}
	errorContains := func(status int, substr string) func(*testing.T, result) {
		return func(t *testing.T, r result) {
			if r.StatusCode != status {
				t.Fatalf("status %d, want %d; body %s", r.StatusCode, status, r.Body)
			}
			if e := r.str("error"); !strings.Contains(e, substr) {
				t.Errorf("error = %q, want it to mention %q", e, substr)
			}
		}
	}
	ok := func(status int, check func(*testing.T, result)) func(*testing.T, result) {
		return func(t *testing.T, r result) {
			if r.StatusCode != status {
				t.Fatalf("status %d, want %d; body %s", r.StatusCode, status, r.Body)
			}
			if check != nil {
				check(t, r)
			}
		}
	}
	counts := func(accepted, duplicates float64) func(*testing.T, result) {
		return ok(http.StatusAccepted, func(t *testing.T, r result) {
			if r.num(t, "accepted") != accepted || r.num(t, "duplicates") != duplicates || r.num(t, "stale") != 0 {
				t.Errorf("body %s, want accepted %v, duplicates %v, stale 0", r.Body, accepted, duplicates)
			}
		})
	}
	history := func(period string, atLeast int, idKey, id string) func(*testing.T, result) {
		return ok(http.StatusOK, func(t *testing.T, r result) {
			ms := r.list(t, "metrics")
			if r.str("period") != period || len(ms) < atLeast || r.num(t, "count") != float64(len(ms)) {
				t.Fatalf("period %q, %d metrics, count %v; want period %s and at least %d metrics: %s", r.str("period"), len(ms), r.json["count"], period, atLeast, r.Body)
			}
			var prev string
			for _, m := range ms {
				m := m.(map[string]any)
				if m[idKey] != id {
					t.Errorf("%s = %v, want %s", idKey, m[idKey], id)
				}
				at, _ := m["collectedAt"].(string)
				if at < prev {
					t.Errorf("points not oldest first: %s after %s", at, prev)
				}
				prev = at
			}
		})
	}
	allow := func(methods string) func(*testing.T, result) {
		return func(t *testing.T, r result) {
			errorContains(http.StatusMethodNotAllowed, "use "+methods)(t, r)
			if r.Headers["Allow"] != methods {
				t.Errorf("Allow = %q, want %q", r.Headers["Allow"], methods)
			}
		}
	}
	lastSample := fx.now.Add(-3 * time.Second).Format(time.RFC3339) // late-sample.json, the newest

	cases := []struct {
		event, function string
		check           func(*testing.T, result)
	}{
		{"ingest-gzip-base64", "ingest", counts(2, 0)},
		{"ingest-gzip-base64", "ingest", counts(0, 2)}, // re-sent: idempotent
		{"ingest-plain-mixed-case", "ingest", counts(1, 0)},
		{"ingest-base64-identity", "ingest", counts(1, 0)},
		{"ingest-bad-signature", "ingest", errorContains(http.StatusUnauthorized, "signature")},
		{"ingest-stale-timestamp", "ingest", errorContains(http.StatusUnauthorized, "clock")},
		{"ingest-unknown-host", "ingest", errorContains(http.StatusUnauthorized, auth.SignatureMismatch)},
		{"ingest-invalid-sample", "ingest", errorContains(http.StatusBadRequest, "samples[0].cpuUsagePercent")},
		{"ingest-bad-gzip", "ingest", errorContains(http.StatusBadRequest, "gzip")},
		{"ingest-unsupported-encoding", "ingest", errorContains(http.StatusUnsupportedMediaType, "br")},

		{"query-servers", "query", ok(http.StatusOK, func(t *testing.T, r result) {
			servers := r.list(t, "servers")
			if len(servers) != 1 {
				t.Fatalf("servers = %s, want web-1 only", r.Body)
			}
			s := servers[0].(map[string]any)
			insts, _ := s["instances"].([]any)
			if s["id"] != "web-1" || len(insts) != 1 || insts[0].(map[string]any)["name"] != "nginx" || insts[0].(map[string]any)["id"] != fx.instanceID {
				t.Errorf("servers = %s, want web-1 with instance nginx %s", r.Body, fx.instanceID)
			}
		})},
		{"query-server-metrics", "query", history("1h", 1, "serverId", "web-1")},
		{"query-server-metrics-params-only", "query", history("6h", 1, "serverId", "web-1")},
		{"query-access-token", "query", history("1h", 1, "serverId", "web-1")},
		{"query-server-latest", "query", ok(http.StatusOK, func(t *testing.T, r result) {
			if r.str("serverId") != "web-1" || r.str("collectedAt") != lastSample || math.Abs(r.num(t, "cpuUsagePercent")-23.5) > 1e-9 {
				t.Errorf("latest = %s, want web-1 at %s with cpuUsagePercent 23.5", r.Body, lastSample)
			}
			for _, k := range []string{"id", "cpuLoad1m", "ramTotalBytes", "diskUsagePercent", "networkRxBytes", "uptimeSeconds"} {
				if _, ok := r.json[k]; !ok {
					t.Errorf("latest lacks %q: %s", k, r.Body)
				}
			}
		})},
		{"query-instance-metrics", "query", history("24h", 1, "instanceId", fx.instanceID)},
		{"query-instance-latest", "query", ok(http.StatusOK, func(t *testing.T, r result) {
			if r.str("instanceId") != fx.instanceID || r.str("serverId") != "web-1" || r.str("name") != "nginx" {
				t.Errorf("latest = %s, want nginx on web-1", r.Body)
			}
		})},
		{"query-no-token", "query", func(t *testing.T, r result) {
			errorContains(http.StatusUnauthorized, "")(t, r)
			if !strings.HasPrefix(r.Headers["Www-Authenticate"], "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want Bearer …", r.Headers["Www-Authenticate"])
			}
		}},
		{"query-forbidden", "query", errorContains(http.StatusForbidden, "web-1")},
		{"query-bad-period", "query", errorContains(http.StatusBadRequest, "period")},
		{"query-bad-instance-id", "query", errorContains(http.StatusBadRequest, "UUID")},
		{"query-unknown-server", "query", errorContains(http.StatusNotFound, "")},
		{"query-healthz", "query", ok(http.StatusOK, func(t *testing.T, r result) {
			if r.str("status") != "ok" {
				t.Errorf("healthz = %s, want status ok", r.Body)
			}
		})},
		{"query-unknown-route", "query", errorContains(http.StatusNotFound, "no such route")},

		// What API Gateway sends the $default route: the query function
		// answers every unrouted method and path in JSON.
		{"default-ingest-get", "query", allow("POST")},
		{"default-post-servers", "query", allow("GET, HEAD")},
		{"default-streamer-ws", "query", errorContains(http.StatusNotFound, "served by the streamer")},
	}
	tpl := loadTemplate(t)
	used := map[string]bool{}
	for i, c := range cases {
		used[c.event] = true
		t.Run(strconv.Itoa(i)+"-"+c.event, func(t *testing.T) {
			ev := fx.event(t, c.event)
			// The event must be one API Gateway would send, with this
			// template, to the function the case drives.
			fn, routeKey, ok := gatewayRoute(tpl, ev.RequestContext.HTTP.Method, ev.RawPath)
			if !ok || fn != c.function || routeKey != ev.RouteKey || ev.RequestContext.RouteKey != ev.RouteKey {
				t.Fatalf("template.yaml sends %s %s to %q as route %q; the event says route %q (context %q), the case function %q",
					ev.RequestContext.HTTP.Method, ev.RawPath, fn, routeKey, ev.RouteKey, ev.RequestContext.RouteKey, c.function)
			}
			resp := invoke(t, proxies[c.function], ev)
			// The runtime sends the response to Lambda as JSON; make sure
			// it survives that trip as API Gateway will read it.
			b, err := json.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			var r result
			if err := json.Unmarshal(b, &r.APIGatewayV2HTTPResponse); err != nil {
				t.Fatal(err)
			}
			if r.IsBase64Encoded {
				t.Fatalf("JSON answer sent base64-encoded: %s", r.Body)
			}
			if r.Headers["Content-Type"] != "application/json" || r.Headers["Cache-Control"] != "no-store" {
				t.Errorf("headers %v, want Content-Type application/json and Cache-Control no-store", r.Headers)
			}
			if err := json.Unmarshal([]byte(r.Body), &r.json); err != nil {
				t.Fatalf("body is not a JSON object: %q", r.Body)
			}
			c.check(t, r)
		})
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); !used[name] {
			t.Errorf("testdata/events/%s.json is not used by any case", name)
		}
	}
	if len(files) == 0 {
		t.Error("no event fixtures found in testdata/events")
	}
}

// TestLambdaBadEvent: an event the adapter cannot turn into a request (a
// body flagged base64 that is not) is the client's fault: a JSON 400, not an
// invocation error (API Gateway would answer that with a bare 500).
func TestLambdaBadEvent(t *testing.T) {
	fx := newFixture(t)
	ev := fx.event(t, "ingest-plain-mixed-case")
	ev.IsBase64Encoded = true
	ev.Body = "%%% not base64 %%%"
	res, err := lambdahttp.Proxy(fx.st.handlers[httpapi.FunctionIngest])(t.Context(), ev)
	if err != nil || res.StatusCode != http.StatusBadRequest || !json.Valid([]byte(res.Body)) {
		t.Fatalf("got %d %q, %v; want a JSON 400", res.StatusCode, res.Body, err)
	}
}
