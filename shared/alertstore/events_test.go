package alertstore_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

// TestTransitionPublishesEvent: an applied transition publishes the new
// state with its stored version on the events channel; one that loses the
// compare-and-set publishes nothing; a return to ok is an "ok" event.
func TestTransitionPublishesEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := redistest.New(t)
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	s := alertstore.New(rdb, r.Prefix, nil)
	if want := r.Prefix + "{alerts}:events"; s.EventsChannel() != want {
		t.Fatalf("channel %q, want %q", s.EventsChannel(), want)
	}
	ps := rdb.Subscribe(ctx, s.EventsChannel())
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // subscription confirmed
		t.Fatal(err)
	}
	msgs := ps.Channel()
	next := func() map[string]any {
		t.Helper()
		select {
		case m := <-msgs:
			var v map[string]any
			if err := json.Unmarshal([]byte(m.Payload), &v); err != nil {
				t.Fatalf("event %q: %v", m.Payload, err)
			}
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return nil
		}
	}

	now := time.Now().UTC().Truncate(time.Second)
	key := alert.SeriesKey("r1", "web-1", "")
	pending := &alert.Alert{Key: key, RuleID: "r1", Rule: "cpu high", ServerID: "web-1", Metric: "cpuUsagePercent",
		State: alert.StatePending, Since: now, StartsAt: now, Value: 97.5, Version: 99, NotifiedAt: now}
	if ok, err := s.Transition(ctx, alert.Transition{Key: key, Seq: 0, To: pending}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	ev := next()
	pass, err := s.Load(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if ev["state"] != "pending" || ev["serverId"] != "web-1" || ev["rule"] != "cpu high" || ev["ruleId"] != "r1" ||
		ev["value"] != 97.5 || ev["key"] != key || ev["version"] != float64(pass.States[key].Version) || ev["notifiedAt"] != nil {
		t.Fatalf("pending event %v (stored version %d)", ev, pass.States[key].Version)
	}

	// A decision made on an older read loses and publishes nothing.
	if ok, err := s.Transition(ctx, alert.Transition{Key: key, Seq: 0, To: pending}); err != nil || ok {
		t.Fatalf("stale transition applied: %v %v", ok, err)
	}
	// Back to ok without a resolve: an "ok" event naming the series.
	if ok, err := s.Transition(ctx, alert.Transition{Key: key, Seq: pass.Seq}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	ev = next()
	if ev["state"] != "ok" || ev["serverId"] != "web-1" || ev["ruleId"] != "r1" || ev["key"] != key ||
		ev["version"].(float64) <= float64(pass.States[key].Version) {
		t.Fatalf("ok event %v", ev)
	}
	select {
	case m := <-msgs:
		t.Fatalf("the stale transition published %s", m.Payload)
	default:
	}
}
