package streamer_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/streamer"
)

// Issue 12 item 6: one sample dated minutes ahead (inside the skew window),
// then the host's clock steps back. The store publishes every sample that
// becomes the latest under the project's rule (newer, or the latest is
// dated ahead of the receiving clock); the streamer must pass them on
// instead of holding the future one as "newest", and a late joiner must get
// the newest sample received, not the future one. Before, subscribers got
// none of the normal samples and a new subscriber got the future one.
func TestFutureSampleDoesNotFreezeLive(t *testing.T) {
	e := newEnv(t, streamer.Config{PingInterval: time.Hour})
	now := time.Now().Truncate(time.Second)
	e.ingest("web-1", sample(now.Add(-time.Minute), 10))

	ws := e.dial()
	ws.auth(token(t, "*"))
	if got := ws.ask("subscribe server web-1"); got != "ok" {
		t.Fatal(got)
	}
	ws.readPush()
	_, sse := e.sse("/api/servers/web-1/metrics/stream", token(t, "*"))
	sse.nextData(t)
	ch := e.store.ServerChannel("web-1")
	eventually(t, "redis subscription", func() bool {
		n, err := e.store.Client().PubSubNumSub(context.Background(), ch).Result()
		return err == nil && n[ch] == 1
	})
	// Published straight to the channel, as the store publishes them.
	publish := func(at time.Time, cpu float64) {
		t.Helper()
		msg, _ := json.Marshal(metric.ServerMetric{ID: "web-1:" + at.Format(time.RFC3339), ServerID: "web-1", CollectedAt: at.UTC(), CPUUsagePercent: cpu})
		if err := e.store.Client().Publish(context.Background(), ch, msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	future := now.Add(240 * time.Second)
	publish(future, 99)
	ws.waitPush(future)
	sseWait := func(want time.Time) {
		t.Helper()
		for {
			var m metric.ServerMetric
			decodeJSON(t, sse.nextData(t).data, &m)
			if m.CollectedAt.Equal(want) {
				return
			}
			if m.CollectedAt.After(future) || m.CollectedAt.Before(now.Add(-time.Minute)) {
				t.Fatalf("sse: unexpected sample at %s", m.CollectedAt)
			}
		}
	}
	sseWait(future)

	// The clock stepped back: the next samples are older than the future
	// one, and each is newer than the one before.
	var last time.Time
	for i := range 10 {
		last = now.Add(time.Duration(i-30) * time.Second)
		publish(last, float64(i))
		// Every one arrives (the readers read as fast as we publish).
		if p := ws.readPush(); !p.collectedAt(t).Equal(last) {
			t.Fatalf("websocket: sample %d at %s, want %s", i, p.collectedAt(t), last)
		}
		sseWait(last)
	}
	// An older one than the last after that is still refused: the latest
	// is no longer in the future.
	publish(last.Add(-5*time.Second), 1)
	publish(last.Add(time.Second), 2)
	if p := ws.readPush(); !p.collectedAt(t).Equal(last.Add(time.Second)) {
		t.Fatalf("websocket: got %s after an older sample, want %s", p.collectedAt(t), last.Add(time.Second))
	}
	// A late joiner starts from the newest sample received.
	late := e.dial()
	late.auth(token(t, "*"))
	if got := late.ask("subscribe server web-1"); got != "ok" {
		t.Fatal(got)
	}
	if p := late.readPush(); !p.collectedAt(t).Equal(last.Add(time.Second)) {
		t.Fatalf("late subscriber starts at %s, want %s", p.collectedAt(t), last.Add(time.Second))
	}
}
