// Package function is the part every function main shares: configuration
// from VITALS_* variables, the logger, the Redis store, and serving one
// http.Handler under the Lambda runtime or net/http (shared/lambdahttp).
// A function's main only says which handler it serves.
package function

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// Build makes the function's handler. It opens the store with open, after
// checking the rest of its configuration, so a missing secret is reported
// as that rather than as an unreachable Redis. Run closes the store.
type Build func(ctx context.Context, cfg config.Config, logger *slog.Logger, open func() (*redisstore.Store, error)) (http.Handler, error)

// Main runs the function named name until SIGTERM or Ctrl-C and exits 1
// with the error on stderr if it cannot start.
func Main(name, defaultAddr string, build Build) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, name, defaultAddr, os.Getenv, os.Stderr, build); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Run is Main without the process around it: tests pass their own
// environment and cancel ctx to stop it. defaultAddr is used outside Lambda
// when VITALS_ADDR is not set.
func Run(ctx context.Context, name, defaultAddr string, getenv func(string) string, stderr io.Writer, build Build) error {
	h, cfg, logger, closeFn, err := Setup(ctx, name, getenv, stderr, build)
	if err != nil {
		return err
	}
	defer closeFn()
	addr := cfg.Addr
	if addr == "" {
		addr = defaultAddr
	}
	return lambdahttp.Serve(ctx, h, addr, getenv, logger)
}

// Setup is Run up to serving: the configuration, the logger and the
// handler exactly as both runtimes serve it (with the store's request
// budget, so a Redis that stops answering costs a request at most
// Store.Budget). Tests drive the handler through lambdahttp.Proxy. closeFn
// closes the store.
func Setup(ctx context.Context, name string, getenv func(string) string, stderr io.Writer, build Build) (h http.Handler, cfg config.Config, logger *slog.Logger, closeFn func(), err error) {
	cfg, err = config.Load(getenv)
	if err != nil {
		return nil, cfg, nil, nil, err
	}
	logger = cfg.Logger(stderr).With("function", name)
	slog.SetDefault(logger)
	var store *redisstore.Store
	closeFn = func() {
		if store != nil {
			_ = store.Close() // shutting down; the Redis pool holds no unsaved data
		}
	}
	open := func() (*redisstore.Store, error) {
		sc, err := cfg.StoreConfig()
		if err != nil {
			return nil, err
		}
		sc.Lazy = true
		if store, err = redisstore.Open(ctx, sc, logger); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return store, nil
	}
	h, err = build(ctx, cfg, logger, open)
	if err != nil {
		closeFn()
		return nil, cfg, nil, nil, err
	}
	if store != nil {
		h = store.Bound(h)
	}
	return h, cfg, logger, closeFn, nil
}
