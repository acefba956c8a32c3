// Package lambdahttp runs one http.Handler either as an AWS Lambda function
// behind API Gateway HTTP API (payload v2) or as a plain net/http server, so
// the same handler is deployed serverless and run locally.
package lambdahttp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/vitals-dev/vitals/shared/httpserve"
)

// Proxy adapts h to an API Gateway HTTP API (v2) Lambda handler. It is the
// exact function Serve hands to the Lambda runtime, so tests drive it with
// recorded events.
//
// An event that cannot become an *http.Request (a body marked base64 that is
// not, an unparsable path) gets a JSON 400 like every other bad request. The
// adapter's own answer is an invocation error, which API Gateway turns into
// a bare 500 and the client would retry forever.
func Proxy(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	a := httpadapter.NewV2(h)
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req, err := a.EventToRequestWithContext(ctx, ev)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{
				StatusCode: http.StatusBadRequest,
				Headers:    map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store"},
				Body:       `{"error":"malformed request: the API Gateway event could not be read as an HTTP request"}`,
			}, nil
		}
		w := core.NewProxyResponseWriterV2()
		h.ServeHTTP(w, req)
		return w.GetProxyResponse()
	}
}

// Serve runs h until ctx is cancelled: under the Lambda runtime when
// AWS_LAMBDA_RUNTIME_API is set (getenv), else as an HTTP server on addr,
// shut down gracefully (in-flight requests finish) when ctx ends.
func Serve(ctx context.Context, h http.Handler, addr string, getenv func(string) string, logger *slog.Logger) error {
	if getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		logger.Info("starting under the Lambda runtime")
		lambda.StartWithOptions(Proxy(h), lambda.WithContext(ctx))
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set VITALS_ADDR to use another address): %w", addr, err)
	}
	return ServeListener(ctx, h, ln, logger)
}

// ServeListener is Serve's net/http half on an open listener (tests pass
// 127.0.0.1:0). It logs "listening" with the address. The server has the
// bounds every Vitals server has (shared/httpserve), and each response a
// write deadline: a function answers in one go.
func ServeListener(ctx context.Context, h http.Handler, ln net.Listener, logger *slog.Logger) error {
	srv := httpserve.NewServer(httpserve.BoundWrite(h), logger)
	logger.Info("listening", "addr", ln.Addr().String())
	return httpserve.Serve(ctx, srv, ln, func(context.Context) error {
		logger.Info("shutting down")
		return nil
	})
}
