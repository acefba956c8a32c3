package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/testlog"
)

// TestLogLimiter: one line per key and interval, and the next line carries
// how many were held back; keys are independent.
func TestLogLimiter(t *testing.T) {
	l := &logLimiter{every: 30 * time.Second}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		key  string
		at   time.Duration
		ok   bool
		held int
	}{
		{"redis unavailable: timeout", 0, true, 0},
		{"redis unavailable: timeout", time.Second, false, 0},
		{"redis unavailable: out of memory", time.Second, true, 0},
		{"redis unavailable: timeout", 29 * time.Second, false, 0},
		{"redis unavailable: timeout", 30 * time.Second, true, 2},
		{"redis unavailable: timeout", 31 * time.Second, false, 0},
		{"redis unavailable: timeout", 90 * time.Second, true, 1},
	}
	for i, s := range steps {
		held, ok := l.allow(s.key, t0.Add(s.at))
		if ok != s.ok || held != s.held {
			t.Errorf("step %d (%s at %s): allow %v held %d, want %v %d", i, s.key, s.at, ok, held, s.ok, s.held)
		}
	}
}

// TestClientGoneIsNotAnError: a store call that fails because the client
// went away (its request context cancelled) is not logged as an internal
// error.
func TestClientGoneIsNotAnError(t *testing.T) {
	var logs testlog.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("GET", "/api/servers", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	WriteError(w, r, logger, fmt.Errorf("servers: %w", context.Canceled))
	if strings.Contains(logs.String(), "ERROR") || w.Code == http.StatusInternalServerError {
		t.Fatalf("%d, logs %s", w.Code, logs.String())
	}
	// With the request still live, a cancellation from elsewhere is a
	// real internal error.
	logs = testlog.Buffer{}
	WriteError(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/servers", nil), logger, context.Canceled)
	if !strings.Contains(logs.String(), "ERROR") {
		t.Fatalf("live request: logs %s", logs.String())
	}
}
