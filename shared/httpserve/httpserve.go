// Package httpserve builds every HTTP server Vitals runs (the functions
// outside Lambda, the streamer, localdev, the load test's streamer and the
// SAM runtime emulator) with the same bounds on header, body and idle time,
// defined here once, so no server can be held open by a client that sends
// nothing.
//
// The bounds avoid http.Server's ReadTimeout and WriteTimeout on purpose:
// both are whole-connection deadlines that would also end the streamer's
// WebSocket and SSE streams, which live for hours. ReadTimeout's deadline
// even survives into a hijacked WebSocket connection, and once it passes
// net/http's background read cancels an SSE request's context. Instead the
// header has ReadHeaderTimeout, a body a read deadline set per request
// (BodyTimeout from the start of the handler, only when the request has a
// body: a WebSocket upgrade or an SSE GET has none), and handlers that answer
// in one go can add a per-request write deadline with BoundWrite. Streams
// bound each of their writes themselves.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// The bounds every server applies.
const (
	// ReadHeaderTimeout bounds the request line and headers, counted from
	// the first byte of a request; a new connection that sends nothing
	// is closed after it too.
	ReadHeaderTimeout = 10 * time.Second
	// BodyTimeout bounds reading a request's body, counted from when the
	// handler starts. A 1 MiB ingest body on a slow uplink still fits. It
	// also bounds net/http's drain of a body the handler did not read
	// (which it does to reuse the connection), the hold a client that
	// declares a Content-Length and sends nothing would otherwise have.
	BodyTimeout = 30 * time.Second
	// WriteTimeout bounds the response of a handler wrapped in BoundWrite.
	WriteTimeout = 30 * time.Second
	// IdleTimeout closes a keep-alive connection with no next request.
	// Load balancers in front of the streamer keep theirs longer than the
	// SSE heartbeat; this one only concerns connections between requests.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes bounds the request line and headers in bytes.
	MaxHeaderBytes = 64 << 10
	// ShutdownTimeout is how long a graceful shutdown waits for in-flight
	// requests.
	ShutdownTimeout = 10 * time.Second
)

// NewServer returns an http.Server serving h with the bounds above. logger
// receives net/http's own complaints (TLS handshake errors, panics it
// recovered) as warnings; nil discards them. Callers may set BaseContext
// and other unbounded fields; they should not set ReadTimeout or
// WriteTimeout (see the package comment).
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           BoundBody(h),
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// BoundBody gives a request that has a body (a Content-Length above zero,
// or chunked) a read deadline BodyTimeout from now. A request without one
// gets none, so a WebSocket upgrade or an SSE stream is not cut. NewServer
// applies it; it is exported for servers built by hand in tests.
func BoundBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			// An error means the writer cannot set deadlines (a recorder
			// in a test, the Lambda adapter): nothing to bound there.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(BodyTimeout))
		}
		h.ServeHTTP(w, r)
	})
}

// BoundWrite gives each response through h a write deadline WriteTimeout
// from the start of the handler, so a client that stops reading a large
// answer cannot hold the handler. Only for handlers that answer in one go
// (ingest, query), never for the streamer's streams.
func BoundWrite(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(WriteTimeout))
		h.ServeHTTP(w, r)
	})
}

// Serve runs srv on ln until ctx ends, then shuts it down gracefully
// (ShutdownTimeout), calling before first (the streamer ends its streams
// there, which Shutdown would otherwise wait on). Requests get a context
// that is not cancelled with ctx, so in-flight ones finish. It returns nil
// after a clean shutdown.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, before func(context.Context) error) error {
	if srv.BaseContext == nil {
		srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	var berr error
	if before != nil {
		berr = before(sctx)
	}
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return errors.Join(berr, fmt.Errorf("http shutdown: %w", err))
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	return berr
}
