package lambdahttp_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vitals-dev/vitals/shared/lambdahttp"
)

func TestProxy(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		io.WriteString(w, `{"path":"`+r.URL.Path+`","q":"`+r.URL.Query().Get("period")+`"}`)
	})
	res, err := lambdahttp.Proxy(h)(context.Background(), events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/api/x", RawQueryString: "period=6h",
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/api/x"}},
	})
	if err != nil || res.StatusCode != 201 || res.Body != `{"path":"/api/x","q":"6h"}` {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestProxyMalformedEvent: a body flagged base64 that is not base64 is the
// client's fault, answered as JSON 400 without calling the handler.
func TestProxyMalformedEvent(t *testing.T) {
	called := false
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })
	res, err := lambdahttp.Proxy(h)(context.Background(), events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: "/api/ingest", Body: "%%% not base64 %%%", IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/api/ingest"}},
	})
	if err != nil || called || res.StatusCode != http.StatusBadRequest || res.Headers["Content-Type"] != "application/json" || !json.Valid([]byte(res.Body)) {
		t.Fatalf("got %+v, %v (handler called: %v); want a JSON 400", res, err, called)
	}
}

// TestServeGracefulShutdown: a request in flight when ctx is cancelled
// still completes.
func TestServeGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lambdahttp.ServeListener(ctx, h, ln, slog.New(slog.DiscardHandler)) }()
	got := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond) // let Shutdown begin; correctness does not depend on it
	close(release)
	if b := <-got; b != "done" {
		t.Fatalf("in-flight request: %q", b)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestServeBadAddr(t *testing.T) {
	err := lambdahttp.Serve(context.Background(), http.NotFoundHandler(), "256.0.0.1:x", func(string) string { return "" }, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("want a listen error")
	}
}
