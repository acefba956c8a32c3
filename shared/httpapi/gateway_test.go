package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
)

// gatewayEvent is what API Gateway HTTP API (payload 2.0) hands the ingest
// Lambda for a reporter's POST: headers lowercased, the body either base64
// (isBase64Encoded, what HTTP APIs do for any Content-Type that is not
// text-like) or as a text string.
func gatewayEvent(server string, key, signedBody []byte, headers map[string]string, body string, isBase64 bool) events.APIGatewayV2HTTPRequest {
	ts := time.Now().Unix()
	h := map[string]string{
		"x-vitals-server":    server,
		"x-vitals-timestamp": strconv.FormatInt(ts, 10),
		"x-vitals-signature": auth.Sign(key, ts, server, signedBody),
		"content-length":     strconv.Itoa(len(signedBody)),
	}
	for k, v := range headers {
		h[k] = v
	}
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /api/ingest", RawPath: "/api/ingest", Headers: h,
		Body: body, IsBase64Encoded: isBase64,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/api/ingest", Protocol: "HTTP/1.1", SourceIP: "198.51.100.7"},
		},
	}
}

// TestIngestThroughAPIGateway: every way an API Gateway (or a proxy) can
// deliver a gzip body either stores the batch or answers 502, which the
// reporter retries (keeping the batch) and the ingest log reports at
// ERROR; never the 401 or 400 that made reporters drop it.
func TestIngestThroughAPIGateway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxy := lambdahttp.Proxy(e.ingest)
	newBatch := func(i int) ([]byte, []byte) {
		plain := batch(t, 3, func(j int, s map[string]any) {
			s["collectedAt"] = time.Now().Add(-time.Duration(i*10+j) * time.Minute).UTC().Format(time.RFC3339)
		})
		return plain, gz(t, plain)
	}
	reporter := map[string]string{"content-type": "application/gzip", "content-encoding": "gzip"}
	older := map[string]string{"content-type": "application/json", "content-encoding": "gzip"}
	tests := []struct {
		name   string
		event  func(plain, z []byte) events.APIGatewayV2HTTPRequest
		status int
		msg    string
	}{
		{"reporter headers, base64 as HTTP APIs deliver them", func(_, z []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, e.key, z, reporter, base64.StdEncoding.EncodeToString(z), true)
		}, 202, ""},
		{"application/gzip without Content-Encoding", func(_, z []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, e.key, z, map[string]string{"content-type": "application/gzip"}, base64.StdEncoding.EncodeToString(z), true)
		}, 202, ""},
		{"older reporter headers, base64", func(_, z []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, e.key, z, older, base64.StdEncoding.EncodeToString(z), true)
		}, 202, ""},
		{"base64 passed on without the flag", func(_, z []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, e.key, z, reporter, base64.StdEncoding.EncodeToString(z), false)
		}, 202, ""},
		{"gzip delivered as text (bytes over 0x7f replaced)", func(_, z []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, e.key, z, older, strings.ToValidUTF8(string(z), "\uFFFD"), false)
		}, 502, "arrived as text"},
		{"decompressed by the gateway, header kept", func(plain, z []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, e.key, z, older, string(plain), false)
		}, 502, "decompressed"},
		{"decompressed, base64", func(plain, z []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, e.key, z, reporter, base64.StdEncoding.EncodeToString(plain), true)
		}, 502, "decompressed"},
		{"decompressed, and signed as JSON by its host", func(plain, _ []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, e.key, plain, older, string(plain), false)
		}, 202, ""},
		{"a wrong key on base64 passed on without the flag is a 401", func(_, z []byte) events.APIGatewayV2HTTPRequest {
			// Intact gzip under the base64: nothing changed in transit,
			// the key is wrong (a 502 would have the reporter retry it
			// forever as a transport fault).
			return gatewayEvent(e.server, []byte("not-the-key"), z, reporter, base64.StdEncoding.EncodeToString(z), false)
		}, 401, auth.SignatureMismatch},
		{"a wrong key is still a 401", func(_, z []byte) events.APIGatewayV2HTTPRequest {
			return gatewayEvent(e.server, []byte("not-the-key"), z, reporter, base64.StdEncoding.EncodeToString(z), true)
		}, 401, auth.SignatureMismatch},
	}
	for i, tc := range tests {
		plain, z := newBatch(i)
		res, err := proxy(context.Background(), tc.event(plain, z))
		if err != nil {
			t.Fatalf("%s: invocation error %v", tc.name, err)
		}
		var body map[string]any
		if json.Unmarshal([]byte(res.Body), &body) != nil || res.StatusCode != tc.status || !strings.Contains(res.Body, tc.msg) {
			t.Errorf("%s: %d %s; want %d containing %q", tc.name, res.StatusCode, res.Body, tc.status, tc.msg)
			continue
		}
		if tc.status == 202 && body["accepted"] != 3.0 {
			t.Errorf("%s: %s, want 3 accepted", tc.name, res.Body)
		}
	}
	if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"ingest body changed in transit`) {
		t.Errorf("no ERROR log line for a body changed in transit:\n%s", e.logs.String())
	}
	// An unknown host sending a mangled body gets what an enrolled one
	// gets for the same body: the diagnosis never tells who is enrolled.
	plain, z := newBatch(99)
	for _, server := range []string{e.server, "ghost-1"} {
		res, _ := proxy(context.Background(), gatewayEvent(server, e.key, z, older, string(plain), false))
		if res.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: %d %s", server, res.StatusCode, res.Body)
		}
	}
}

// TestBadIDEchoBounded: a 400 for a bad server id (REST path or ingest
// header) or instance id quotes at most the start of it; "." and ".." are
// refused as ids. At a745124 a 1 MiB id came back whole.
func TestBadIDEchoBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	huge := strings.Repeat("a", 1<<20)
	tok := token(t, "*")
	for name, r := range map[string]*http.Request{
		"server path":   get("/api/servers/"+huge+"%20/metrics", tok),
		"instance path": get("/api/instances/"+huge+"/monitoring/metrics", tok),
		"unknown route": get("/api/"+huge, tok),
		"dot-dot":       get("/api/servers/%2e%2e/metrics", tok),
		"ingest header": signed(huge+"!", e.key, batch(t, 1, nil), false),
		"ingest dot":    signed("..", e.key, batch(t, 1, nil), false),
	} {
		h := e.query
		if strings.HasPrefix(name, "ingest") {
			h = e.ingest
		}
		res := do(t, h, r)
		if (res.Status != http.StatusBadRequest && name != "unknown route") || len(res.Raw) > 400 {
			t.Errorf("%s: %d, %d bytes: %.200s", name, res.Status, len(res.Raw), res.Raw)
		}
	}
}
