package evaluator_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/evaluator"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/notify"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
	"github.com/vitals-dev/vitals/shared/testlog"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// clock is a settable time shared by the stores and evaluators of a test,
// so deadlines and group windows pass without waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Set moves the clock to t if t is later (it never goes back).
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// receiver is a real local HTTP endpoint recording what it is sent.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []received
	status func(n int) int // status of the n-th request (1-based); nil: 200
	reply  string          // body of every answer
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, received{r.Header.Clone(), b})
		n := len(rc.reqs)
		st := rc.status
		rc.mu.Unlock()
		if rc.reply != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		if st != nil {
			w.WriteHeader(st(n))
		}
		_, _ = io.WriteString(w, rc.reply)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

// bodies decodes every webhook received.
func (rc *receiver) bodies(t *testing.T) []notify.WebhookBody {
	t.Helper()
	var out []notify.WebhookBody
	for _, r := range rc.got() {
		var b notify.WebhookBody
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatalf("webhook body %q: %v", r.body, err)
		}
		out = append(out, b)
	}
	return out
}

// world is a real Redis with the metric store, the alert store and the
// real notifier, on a test clock.
type world struct {
	t       *testing.T
	clk     *clock
	metrics *redisstore.Store
	alerts  *alertstore.Store
	notify  *notify.Notifier
	logs    *testlog.Buffer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	r := redistest.New(t)
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix, cfg.Now = r.URL, r.Prefix, clk.Now
	ms, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Close() })
	return &world{t: t, clk: clk, metrics: ms, alerts: alertstore.New(ms.Client(), ms.Prefix(), ms.Wrap),
		notify: notify.New("http://vitals.test", clk.Now), logs: &testlog.Buffer{}}
}

func (w *world) evaluator() *evaluator.Evaluator {
	return evaluator.New(w.metrics, w.alerts, w.notify, evaluator.Config{}, slog.New(slog.NewTextHandler(w.logs, nil)), w.clk.Now)
}

// report stores one sample of server id at the current test time (and
// its announced interval), as ingest does.
func (w *world) report(id string, cpu float64, interval time.Duration) {
	w.reportAt(id, cpu, interval, w.clk.Now())
}

func (w *world) reportAt(id string, cpu float64, interval time.Duration, at time.Time) {
	w.t.Helper()
	s := metric.Sample{CollectedAt: at.Truncate(time.Second), CPUUsagePercent: cpu, RAMTotalBytes: 100, RAMUsedBytes: 50, RAMAvailableBytes: 50, RAMUsagePercent: 50,
		DiskTotalBytes: 100, DiskUsedBytes: 10, DiskAvailableBytes: 90, DiskUsagePercent: 10, UptimeSeconds: 100}
	if _, err := w.metrics.Ingest(context.Background(), id, []metric.Sample{s}); err != nil {
		w.t.Fatal(err)
	}
	if err := w.metrics.RecordInterval(context.Background(), id, interval); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) channel(name, url string) alert.Channel {
	w.t.Helper()
	c, err := alert.DecodeChannel([]byte(`{"name":"`+name+`","url":"`+url+`"}`), w.clk.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.notify.Check(c); err != nil {
		w.t.Fatal(err)
	}
	if err := w.alerts.CreateChannel(context.Background(), c); err != nil {
		w.t.Fatal(err)
	}
	return c
}

func (w *world) rule(body string) alert.Rule {
	w.t.Helper()
	r, err := alert.DecodeRule([]byte(body))
	if err != nil {
		w.t.Fatal(err)
	}
	if r, err = w.alerts.CreateRule(context.Background(), r); err != nil {
		w.t.Fatal(err)
	}
	return r
}

// step runs one evaluation and one delivery round with e.
func (w *world) step(e *evaluator.Evaluator) evaluator.Stats {
	w.t.Helper()
	st, err := e.Evaluate(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := e.Deliver(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	return st
}

func (w *world) state(key string) (alert.Alert, bool) {
	w.t.Helper()
	p, err := w.alerts.Load(context.Background(), w.clk.Now())
	if err != nil {
		w.t.Fatal(err)
	}
	a, ok := p.States[key]
	return a, ok
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
