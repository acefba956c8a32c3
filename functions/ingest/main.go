// Command ingest is the ingest function: POST /api/ingest (signed, gzipped
// sample batches from reporters) into Redis. It runs under AWS Lambda when
// AWS_LAMBDA_RUNTIME_API is set, else as an HTTP server on VITALS_ADDR
// (default 127.0.0.1:8081).
package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/vitals-dev/vitals/functions/internal/function"
	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

const defaultAddr = "127.0.0.1:8081"

func main() { function.Main("ingest", defaultAddr, build) }

func build(_ context.Context, cfg config.Config, logger *slog.Logger, open func() (*redisstore.Store, error)) (http.Handler, error) {
	store, err := open()
	if err != nil {
		return nil, err
	}
	return httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Logger: logger, Now: time.Now, MaxBodyBytes: cfg.MaxBodyBytes}), nil
}

// run is main with its environment passed in, for tests.
func run(ctx context.Context, _ []string, getenv func(string) string, _, stderr io.Writer) error {
	return function.Run(ctx, "ingest", defaultAddr, getenv, stderr, build)
}
