package sam

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vitals-dev/vitals/shared/auth"
)

// HTTPEvent is the API Gateway HTTP API (payload 2.0) event for one
// request: routeKey is the matched route ("GET /api/servers/{id}/metrics"),
// path the concrete path. Header names are lowercased, as API Gateway
// delivers them. A body marked binary travels base64-encoded.
func HTTPEvent(method, routeKey, path, rawQuery string, headers map[string]string, body []byte, binary bool) events.APIGatewayV2HTTPRequest {
	h := map[string]string{
		"host":              "local.execute-api.eu-west-1.amazonaws.com",
		"x-forwarded-proto": "https",
		"x-forwarded-port":  "443",
	}
	for k, v := range headers {
		h[strings.ToLower(k)] = v
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey,
		RawPath:        path,
		RawQueryString: rawQuery,
		Headers:        h,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:   routeKey,
			AccountID:  "123456789012",
			APIID:      "local",
			DomainName: h["host"],
			Stage:      "$default",
			RequestID:  "local-" + strconv.FormatInt(time.Now().UnixNano(), 36),
			Time:       time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:  time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "127.0.0.1", UserAgent: h["user-agent"],
			},
		},
	}
	if len(body) > 0 {
		h["content-length"] = strconv.Itoa(len(body))
		ev.Body = string(body)
		if binary {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// SignedIngestEvent is POST /api/ingest carrying batch (JSON) gzipped and
// signed with the host key at now, as the reporter sends it.
func SignedIngestEvent(serverID string, key, batch []byte, now time.Time) (events.APIGatewayV2HTTPRequest, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(batch); err != nil {
		return events.APIGatewayV2HTTPRequest{}, err
	}
	if err := zw.Close(); err != nil {
		return events.APIGatewayV2HTTPRequest{}, err
	}
	body := buf.Bytes()
	ts := now.Unix()
	return HTTPEvent("POST", "POST /api/ingest", "/api/ingest", "", map[string]string{
		"content-type":       "application/json",
		"content-encoding":   "gzip",
		"user-agent":         "vitals-reporter/local",
		auth.HeaderServer:    serverID,
		auth.HeaderTimestamp: strconv.FormatInt(ts, 10),
		auth.HeaderSignature: auth.Sign(key, ts, serverID, body),
	}, body, true), nil
}

// BuildBootstrap compiles functions/<name> under repoRoot into out for
// goos/goarch the way the Makefile builds Lambda binaries (static, stripped,
// lambda.norpc). The cold-start benchmark and tests use it for the host
// platform, which the arm64-only Makefile target cannot give them.
func BuildBootstrap(ctx context.Context, repoRoot, name, out, goos, goarch string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "./functions/"+name)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./functions/%s (%s/%s): %w\n%s", name, goos, goarch, err, b)
	}
	return nil
}
