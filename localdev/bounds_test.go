package main

import (
	"context"
	"strings"
	"testing"

	"github.com/vitals-dev/vitals/shared/httpserve/servetest"
	"github.com/vitals-dev/vitals/shared/redistest"
	"github.com/vitals-dev/vitals/shared/testlog"
)

// TestServerBounds: localdev's one server closes a connection that sends
// nothing, half a header, or a Content-Length and no body within the shared
// bounds, on a function route and a streamer route alike (it had only a
// header timeout).
func TestServerBounds(t *testing.T) {
	r := redistest.New(t)
	addr, out := startStack(t, r, "localdev-bounds", "")
	waitFor(t, "the stack to come up", func() bool { return strings.Contains(out.String(), "token:") })
	t.Run("ingest", func(t *testing.T) {
		t.Parallel()
		servetest.AssertClosesSilent(t, addr, "POST", "/api/ingest")
	})
	t.Run("streamer", func(t *testing.T) {
		t.Parallel()
		servetest.AssertClosesSilent(t, addr, "GET", "/healthz")
	})
}

// TestRedisPasswordNotShown: a Redis that does not answer makes localdev
// exit with an error naming the Redis, its password redacted.
func TestRedisPasswordNotShown(t *testing.T) {
	stalled := redistest.StartStalled(t)
	env := map[string]string{
		"VITALS_ADDR":         freeAddr(t),
		"VITALS_REDIS_URL":    "redis://:hunter2-s3cr3t@" + stalled.Addr,
		"VITALS_LOCALDEV_DIR": t.TempDir(),
		"VITALS_JWT_SECRET":   "test-secret-test-secret-test-secret",
	}
	var stdout, stderr testlog.Buffer
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), stalled.Addr) {
		t.Fatalf("want an error naming the Redis, got %v", err)
	}
	for _, s := range []string{err.Error(), stdout.String(), stderr.String()} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("password shown: %s", s)
		}
	}
}
