package main

import (
	"context"
	"log/slog"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// openHostKeys opens the store the functions use, so host keys land exactly
// where ingest looks for them. Empty url or prefix keep the store's defaults.
// The returned func closes the connection.
func openHostKeys(ctx context.Context, url, prefix string, logger *slog.Logger) (metric.HostKeys, func(), error) {
	cfg := redisstore.DefaultConfig()
	if url != "" {
		cfg.URL = url
	}
	if prefix != "" {
		cfg.Prefix = prefix
	}
	s, err := redisstore.Open(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	return s, func() { _ = s.Close() }, nil
}
