// Package httpapi holds Vitals' HTTP handlers: the ingest function
// (POST /api/ingest), the query function (the REST API), the route table
// every deployment mounts from, and the one place where error kinds become
// HTTP statuses with a JSON body.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// RetryAfterSeconds is what a 503 tells clients to wait before retrying.
const RetryAfterSeconds = "5"

// statusError is an HTTP-only failure that has no domain error kind
// (an unknown route, a wrong method, an unsupported encoding). Its message
// is client-safe.
type statusError struct {
	status int
	msg    string
	allow  string // Allow header for 405
}

func (e *statusError) Error() string { return e.msg }

// WriteJSON writes v as the JSON response with status. Responses carry
// personal-ish host data and change every few seconds, so nothing is cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only unencodable values (NaN, channels) get here: a programming
		// error, but still answer in JSON.
		status = http.StatusInternalServerError
		body = []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// errorBody is the shape of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// WriteError answers err as {"error": "<reason>"} with the status its kind
// maps to. It is the only place that maps kinds to statuses:
// ErrInvalid 400, ErrUnauthorized 401, ErrForbidden 403, ErrNotFound 404,
// ErrTooLarge 413, ErrUnavailable 503 (with Retry-After). Anything else is
// a 500 whose real error is logged, never shown.
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status, msg := classify(err)
	if status == http.StatusInternalServerError && errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away mid-request (the store honours the
		// request's context): nothing is broken and nobody reads the
		// answer, so no error is logged.
		logger.Debug("request cancelled by the client", "method", r.Method, "path", r.URL.Path)
		WriteJSON(w, http.StatusServiceUnavailable, errorBody{Error: "request cancelled"})
		return
	}
	switch status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", RetryAfterSeconds)
		// A Redis that is down, stalled or full fails every request the
		// same way: one warning per interval (with how many were not
		// logged) says so without burying everything else.
		if n, ok := unavailableLog.allow(msg, time.Now()); ok {
			logger.Warn("dependency unavailable", "method", r.Method, "path", r.URL.Path, "err", err,
				"suppressed", n, "interval", unavailableLog.every.String())
		}
	case http.StatusInternalServerError:
		logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	case http.StatusMethodNotAllowed:
		var se *statusError
		if errors.As(err, &se) && se.allow != "" {
			w.Header().Set("Allow", se.allow)
		}
	}
	WriteJSON(w, status, errorBody{Error: msg})
}

// UnavailableLogInterval is how often WriteError logs a warning for 503s of
// one cause (the client message, e.g. "redis unavailable: timeout"); the
// others are counted and the count logged with the next warning.
const UnavailableLogInterval = 30 * time.Second

// unavailableLog is per process, as the dependency it reports on is: on
// Lambda that is one warning per interval per container.
var unavailableLog = &logLimiter{every: UnavailableLogInterval}

// logLimiter lets one log line per key through per interval and counts the
// lines it held back. Safe for concurrent use.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*limitState
}

type limitState struct {
	last       time.Time
	suppressed int
}

// allow reports whether a line for key may be logged at now, and how many
// were suppressed since the last one that was.
func (l *logLimiter) allow(key string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = map[string]*limitState{}
	}
	st := l.keys[key]
	if st == nil {
		// Causes are few (a handful of client messages), so the map stays
		// small; cap it anyway against a message that embeds a value.
		if len(l.keys) >= 64 {
			clear(l.keys)
		}
		st = &limitState{}
		l.keys[key] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < l.every {
		st.suppressed++
		return 0, false
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return n, true
}

// classify returns the status and client message for err.
func classify(err error) (int, string) {
	var se *statusError
	if errors.As(err, &se) {
		return se.status, se.msg
	}
	var status int
	switch {
	case errors.Is(err, metric.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, metric.ErrUnauthorized):
		status = http.StatusUnauthorized
	case errors.Is(err, metric.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, metric.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, metric.ErrTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, metric.ErrUnavailable):
		status = http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError, "internal error"
	}
	// Only a *metric.Error's message is written for clients; a kind wrapped
	// in fmt.Errorf may carry internal detail (addresses, keys), so it gets
	// the kind's generic text instead.
	var me *metric.Error
	if errors.As(err, &me) && me.Msg != "" {
		return status, me.Msg
	}
	return status, strings.ToLower(http.StatusText(status))
}

// recoverer turns a panic in h into a logged 500 JSON answer, so one bad
// request never takes a Lambda container or the server down with it.
func recoverer(h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(v)
			}
			WriteError(w, r, logger, fmt.Errorf("panic serving %s %s: %v", r.Method, r.URL.Path, v))
		}()
		h.ServeHTTP(w, r)
	})
}
