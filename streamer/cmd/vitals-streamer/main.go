// Command vitals-streamer serves live updates: the WebSocket protocol at
// /api/health/ws, the SSE streams, and the live-view page, fed by Redis
// pub/sub. It is a long-running service (not a Lambda function).
//
// Configuration is the common VITALS_* environment (see shared/config:
// VITALS_REDIS_URL, VITALS_JWT_SECRET or VITALS_JWT_JWKS_URL, …) plus
// VITALS_STREAMER_ORIGINS (extra browser origins allowed to open the
// WebSocket, comma-separated host patterns) and VITALS_API_BASE (where the
// page finds the REST API when it is not on the same origin). Flags
// override the environment.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/httpserve"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/streamer"
)

const defaultAddr = "127.0.0.1:8083"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "vitals-streamer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("vitals-streamer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", or(cfg.Addr, defaultAddr), "listen address (VITALS_ADDR)")
	apiBase := fs.String("api-base", getenv("VITALS_API_BASE"), "REST API base URL for the page; empty = same origin (VITALS_API_BASE)")
	origins := fs.String("origins", getenv("VITALS_STREAMER_ORIGINS"), "extra browser origins allowed to open the WebSocket, comma-separated (VITALS_STREAMER_ORIGINS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := cfg.Logger(stderr).With("service", "streamer")
	slog.SetDefault(logger)

	verifier, err := cfg.Verifier(ctx)
	if err != nil {
		return err
	}
	sc, err := cfg.StoreConfig()
	if err != nil {
		return err
	}
	// Redis down at start is a 503 on /healthz and an error frame per
	// request until it answers, not an exit: the hub subscribes whenever
	// the connection comes up.
	sc.Lazy = true
	store, err := redisstore.Open(ctx, sc, logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close() //nolint:errcheck // shutting down; the Redis pool holds no unsaved data

	scfg := streamer.Config{APIBase: *apiBase}
	for o := range strings.SplitSeq(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			scfg.OriginPatterns = append(scfg.OriginPatterns, o)
		}
	}
	stream, err := streamer.New(streamer.Deps{
		Store: store, Client: store.Client(), Channels: store, Verifier: verifier, Logger: logger, Now: time.Now,
		// Alert push: the evaluator's transitions, on the same Redis.
		Alerts: alertstore.New(store.Client(), store.Prefix(), store.Wrap),
	}, scfg)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set VITALS_ADDR or -addr): %w", *addr, err)
	}
	// The bounds every Vitals server has (shared/httpserve): header, body
	// and idle time, but no whole-connection deadline, since streams live
	// for hours and bound each of their writes themselves.
	// Each request's Redis reads (healthz, an SSE stream's first snapshot)
	// share the store's request budget: a Redis that stops answering gets
	// a 503 within it, not a hang.
	srv := httpserve.NewServer(store.Bound(stream.Handler()), logger)
	logger.Info("listening", "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "vitals-streamer listening on http://%s/\n", ln.Addr())
	// Streams first (close frames with a reason, SSE ends cleanly), then
	// the HTTP server, which would otherwise wait on the SSE handlers.
	return httpserve.Serve(ctx, srv, ln, func(sctx context.Context) error {
		logger.Info("shutting down")
		return stream.Shutdown(sctx)
	})
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
