// Command ingest is the ingest function: POST /api/ingest (signed, gzipped
// sample batches from reporters) into Redis. It runs under AWS Lambda when
// AWS_LAMBDA_RUNTIME_API is set, else as an HTTP server on VITALS_ADDR
// (default 127.0.0.1:8081).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

const defaultAddr = "127.0.0.1:8081"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, _ []string, getenv func(string) string, _, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logger := cfg.Logger(stderr).With("function", "ingest")
	slog.SetDefault(logger)
	sc, err := cfg.StoreConfig()
	if err != nil {
		return err
	}
	store, err := redisstore.Open(ctx, sc, logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()
	h := httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Logger: logger, Now: time.Now, MaxBodyBytes: cfg.MaxBodyBytes})
	addr := cfg.Addr
	if addr == "" {
		addr = defaultAddr
	}
	return lambdahttp.Serve(ctx, h, addr, getenv, logger)
}
