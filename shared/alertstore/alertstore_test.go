package alertstore_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func newStore(t *testing.T) *alertstore.Store {
	t.Helper()
	r := redistest.New(t)
	opt, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return alertstore.New(rdb, r.Prefix, nil)
}

func TestRulesChannelsSilences(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	r, err := alert.DecodeRule([]byte(`{"name":"down","metric":"nodata","for":"30s","servers":["*"],"channels":["ops"]}`))
	if err != nil {
		t.Fatal(err)
	}
	r, err = s.CreateRule(ctx, r)
	if err != nil || r.ID == "" {
		t.Fatal(r, err)
	}
	r.Name = "renamed"
	if err := s.PutRule(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Rule(ctx, r.ID)
	if err != nil || got.Name != "renamed" || got.For.D() != 30*time.Second {
		t.Fatal(got, err)
	}
	if err := s.PutRule(ctx, alert.Rule{ID: "nope"}); !errors.Is(err, metric.ErrNotFound) {
		t.Fatalf("put unknown: %v", err)
	}
	if err := s.DeleteRule(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rule(ctx, r.ID); !errors.Is(err, metric.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}

	c, _ := alert.DecodeChannel([]byte(`{"name":"ops","url":"webhook+http://127.0.0.1:1/x"}`), time.Now())
	if err := s.CreateChannel(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateChannel(ctx, c); !errors.Is(err, metric.ErrInvalid) {
		t.Fatalf("duplicate channel: %v", err)
	}
	back, err := s.Channel(ctx, "ops")
	if err != nil || back.Secret != c.Secret {
		t.Fatal(back, err)
	}

	now := time.Now()
	sl, err := s.CreateSilence(ctx, alert.Silence{Servers: []string{"*"}, Until: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSilence(ctx, alert.Silence{Servers: []string{"*"}, Until: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	active, err := s.Silences(ctx, now.Add(time.Minute))
	if err != nil || len(active) != 1 || active[0].ID != sl.ID {
		t.Fatal(active, err)
	}
}

// TestTransitionCompareAndSet: of two decisions made on the same read,
// only the first applies; a decision on a read older than a change made
// since (even one that returned the series to ok) never applies.
func TestTransitionCompareAndSet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	now := time.Now().UTC()
	p0, err := s.Load(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	pending := &alert.Alert{Key: "r/web-1", RuleID: "r", ServerID: "web-1", State: alert.StatePending, Since: now}
	ok, err := s.Transition(ctx, alert.Transition{Key: pending.Key, Seq: p0.Seq, To: pending})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, _ := s.Transition(ctx, alert.Transition{Key: pending.Key, Seq: p0.Seq, To: pending}); ok {
		t.Fatal("second decision on the same read applied")
	}
	p1, _ := s.Load(ctx, now)
	if st := p1.States[pending.Key]; st.State != alert.StatePending || st.Version == 0 {
		t.Fatalf("state %+v", st)
	}
	// Back to ok, then a stale decision (on p1) must not apply.
	if ok, _ := s.Transition(ctx, alert.Transition{Key: pending.Key, Seq: p1.Seq}); !ok {
		t.Fatal("to ok refused")
	}
	if ok, _ := s.Transition(ctx, alert.Transition{Key: pending.Key, Seq: p1.Seq, To: pending}); ok {
		t.Fatal("ABA: a decision on an older read applied after the series went back to ok")
	}
	// Another series is untouched by all this.
	if ok, _ := s.Transition(ctx, alert.Transition{Key: "r/web-2", Seq: p1.Seq, To: pending}); !ok {
		t.Fatal("independent series refused")
	}
}

func TestQueueGroupsClaimsAndRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	rule := alert.Rule{ID: "r1", Name: "down", Metric: alert.NoData}
	p, _ := s.Load(ctx, now)
	for _, id := range []string{"a", "b", "c"} {
		a := alert.Alert{Key: "r1/" + id, ServerID: id, State: alert.StateFiring}
		ok, err := s.Transition(ctx, alert.Transition{Key: a.Key, Seq: p.Seq + 10, To: &a,
			Notices: []alert.Notice{{Channel: "ops", Rule: rule, Status: "firing", At: now, Alert: a}, {Channel: "chat", Rule: rule, Status: "firing", At: now, Alert: a}}})
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if ms, _ := s.Claim(ctx, now.Add(29*time.Second), time.Minute, 10); len(ms) != 0 {
		t.Fatalf("claimed before the group window ended: %d", len(ms))
	}
	ms, err := s.Claim(ctx, now.Add(31*time.Second), time.Minute, 10)
	if err != nil || len(ms) != 2 {
		t.Fatalf("claim: %d %v", len(ms), err)
	}
	for _, m := range ms {
		if len(m.Alerts) != 3 || m.Attempt != 1 {
			t.Fatalf("message %+v", m)
		}
	}
	if again, _ := s.Claim(ctx, now.Add(40*time.Second), time.Minute, 10); len(again) != 0 {
		t.Fatal("claimed twice within the lease")
	}
	if err := s.Finish(ctx, ms[0], alert.Delivery{Group: ms[0].ID, OK: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Retry(ctx, ms[1], alert.Delivery{Group: ms[1].ID}, now.Add(50*time.Second)); err != nil {
		t.Fatal(err)
	}
	re, _ := s.Claim(ctx, now.Add(51*time.Second), time.Minute, 10)
	if len(re) != 1 || re[0].ID != ms[1].ID || re[0].Attempt != 2 {
		t.Fatalf("retry claim %+v", re)
	}
	ds, _ := s.Deliveries(ctx, 10)
	if len(ds) != 2 {
		t.Fatalf("deliveries %d", len(ds))
	}
}
