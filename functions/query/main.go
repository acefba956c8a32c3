// Command query is the query function: the REST API over stored metrics
// (GET /api/servers…, /api/instances…, /api/healthz) and alerting
// (/api/alerts…). It is also the API Gateway $default route, so it answers
// every request no other route matches with the documented JSON 404 or 405
// (+ Allow). It runs under AWS
// Lambda when AWS_LAMBDA_RUNTIME_API is set, else as an HTTP server on
// VITALS_ADDR (default 127.0.0.1:8082).
package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/vitals-dev/vitals/functions/internal/function"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/notify"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

const defaultAddr = "127.0.0.1:8082"

func main() { function.Main("query", defaultAddr, build) }

func build(ctx context.Context, cfg config.Config, logger *slog.Logger, open func() (*redisstore.Store, error)) (http.Handler, error) {
	verifier, err := cfg.Verifier(ctx)
	if err != nil {
		return nil, err
	}
	store, err := open()
	if err != nil {
		return nil, err
	}
	// Test messages link nowhere, so no public URL is needed here.
	alerts := &httpapi.AlertDeps{Store: alertstore.New(store.Client(), store.Prefix(), store.Wrap), Sender: notify.New("", nil)}
	return httpapi.NewQuery(httpapi.QueryDeps{Store: store, Verifier: verifier, Logger: logger, Now: time.Now, Alerts: alerts}), nil
}

// run is main with its environment passed in, for tests.
func run(ctx context.Context, _ []string, getenv func(string) string, _, stderr io.Writer) error {
	return function.Run(ctx, "query", defaultAddr, getenv, stderr, build)
}
