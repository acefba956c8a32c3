// Package httpapi holds Vitals' HTTP handlers: the ingest function
// (POST /api/ingest), the query function (the REST API), the route table
// every deployment mounts from, and the one place where error kinds become
// HTTP statuses with a JSON body.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

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
	switch status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", RetryAfterSeconds)
		logger.Warn("dependency unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
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
