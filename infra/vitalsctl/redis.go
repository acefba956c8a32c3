package main

import (
	"context"
	"log/slog"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// openStore opens the store the functions use, so host keys and instance
// bindings land exactly where ingest looks for them. Empty url or prefix
// keep the store's defaults.
func openStore(ctx context.Context, url, prefix string, logger *slog.Logger) (*redisstore.Store, error) {
	cfg := redisstore.DefaultConfig()
	if url != "" {
		cfg.URL = url
	}
	if prefix != "" {
		cfg.Prefix = prefix
	}
	return redisstore.Open(ctx, cfg, logger)
}

// openHostKeys is openStore seen as the host keys it holds. The returned
// func closes the connection.
func openHostKeys(ctx context.Context, url, prefix string, logger *slog.Logger) (metric.HostKeys, func(), error) {
	s, err := openStore(ctx, url, prefix, logger)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { _ = s.Close() }, nil
}
