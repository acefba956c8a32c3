package streamer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/streamer"
)

// burstResult is what one burst did to a set of live readers.
type burstResult struct {
	readers int
	dropped int             // readers whose connection ended, or that never got the newest sample
	stale   int             // readers still connected whose last sample is not the newest
	lat     []time.Duration // per reader and batch: Ingest call start -> receipt of the batch's newest sample
	ingest  time.Duration   // the longest Ingest call (part of every latency above)
}

func (r burstResult) percentile(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (r burstResult) String() string {
	return fmt.Sprintf("%d readers: %d dropped, %d stale; latency to the newest sample p50 %v, p95 %v, max %v (%d receipts; longest ingest call %v)",
		r.readers, r.dropped, r.stale, r.percentile(0.50).Round(time.Millisecond),
		r.percentile(0.95).Round(time.Millisecond), r.percentile(1).Round(time.Millisecond), len(r.lat), r.ingest.Round(time.Millisecond))
}

// burstReader follows web-1 on one transport and records when it first
// sees each batch's newest sample.
type burstReader struct {
	next    func() ([]byte, error) // the next metric JSON
	close   func()
	marks   []int64       // collectedAt (unix ns) of each batch's newest sample
	seen    []time.Time   // receipt of marks[i]
	reached atomic.Int32  // how many marks were seen
	lastAt  atomic.Int64  // collectedAt of the last metric received
	failed  atomic.Bool   // the connection ended before the test did
	err     atomic.Value  // its error
	done    chan struct{} // closed when run returns
}

func (r *burstReader) run(stopping *atomic.Bool) {
	defer close(r.done)
	var m struct {
		CollectedAt time.Time `json:"collectedAt"`
	}
	for {
		b, err := r.next()
		if err != nil {
			if !stopping.Load() {
				r.failed.Store(true)
				r.err.Store(err)
			}
			return
		}
		now := time.Now()
		if err := json.Unmarshal(b, &m); err != nil {
			r.failed.Store(true)
			r.err.Store(err)
			return
		}
		at := m.CollectedAt.UnixNano()
		r.lastAt.Store(at)
		for i := int(r.reached.Load()); i < len(r.marks) && at >= r.marks[i]; i++ {
			r.seen[i] = now
			r.reached.Store(int32(i + 1))
		}
	}
}

// liveBurst connects nWS WebSocket and nSSE SSE readers of server web-1,
// ingests one batch of burst samples and then drain batches of drainSize,
// each newer than the last (what a reporter does after an outage: its spool
// in one request, then the rest), and reports who was dropped and how long
// the others took to show each batch's newest sample. Each batch goes in
// once every live reader has shown the previous one, as the next request of
// a draining reporter would.
func liveBurst(tb testing.TB, e *env, nWS, nSSE, burst, drains, drainSize int) burstResult {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	e.ingest("web-1", sample(t0, 10))

	// The batches: realistic, varying readings one second apart.
	var batches [][]metric.Sample
	at := t0
	for i, n := 0, burst; i <= drains; i, n = i+1, drainSize {
		b := make([]metric.Sample, n)
		for j := range b {
			at = at.Add(time.Second)
			s := sample(at, 5+90*rng.Float64())
			s.CPULoad1m = 4 * rng.Float64()
			s.RAMUsedBytes = uint64(2<<30 + rng.IntN(4<<30))
			s.NetworkRxBytes = uint64(1000 + i*100000 + j*1000 + rng.IntN(1000))
			for k := range s.Instances {
				s.Instances[k].InstanceID = metric.InstanceUUID("web-1", s.Instances[k].Name)
				s.Instances[k].CPUUsagePercent = 50 * rng.Float64()
			}
			b[j] = s
		}
		batches = append(batches, b)
	}
	marks := make([]int64, len(batches))
	for i, b := range batches {
		marks[i] = b[len(b)-1].CollectedAt.UnixNano()
	}

	tok := token(tb, "web-1")
	var readers []*burstReader
	newReader := func(next func() ([]byte, error), close func()) {
		readers = append(readers, &burstReader{next: next, close: close, marks: marks, seen: make([]time.Time, len(marks)), done: make(chan struct{})})
	}
	for range nWS {
		c := e.dial()
		c.auth(tok)
		if got := c.ask("subscribe server web-1"); got != "ok" {
			tb.Fatalf("subscribe: %q", got)
		}
		c.readPush()
		newReader(func() ([]byte, error) {
			_, b, err := c.conn.Read(context.Background())
			if err != nil {
				return nil, err
			}
			var p push
			if err := json.Unmarshal(b, &p); err != nil || p.Type != "server" {
				return nil, fmt.Errorf("want a push, got %.80q (%w)", b, err)
			}
			return p.Metric, nil
		}, func() { _ = c.conn.CloseNow() })
	}
	for range nSSE {
		resp, stream := e.sse("/api/servers/web-1/metrics/stream", tok)
		if resp.StatusCode != 200 {
			tb.Fatalf("sse status %d", resp.StatusCode)
		}
		stream.nextData(tb)
		newReader(func() ([]byte, error) {
			for {
				ev, err := stream.next()
				if err != nil {
					return nil, err
				}
				if ev.data != "" {
					return []byte(ev.data), nil
				}
			}
		}, func() { _ = resp.Body.Close() })
	}
	ch := e.store.ServerChannel("web-1")
	eventually(tb, "redis subscription", func() bool {
		n, err := e.store.Client().PubSubNumSub(context.Background(), ch).Result()
		return err == nil && n[ch] == 1
	})

	var stopping atomic.Bool
	for _, r := range readers {
		go r.run(&stopping)
	}
	defer func() {
		stopping.Store(true)
		for _, r := range readers {
			r.close()
			<-r.done
		}
	}()

	res := burstResult{readers: len(readers)}
	starts := make([]time.Time, len(batches))
	for i, b := range batches {
		starts[i] = time.Now()
		out, err := e.store.Ingest(context.Background(), "web-1", b)
		if err != nil || out.Accepted != len(b) {
			tb.Fatalf("ingest batch %d: %+v %v", i, out, err)
		}
		res.ingest = max(res.ingest, time.Since(starts[i]))
		// Wait (bounded only to catch a hang) for every live reader.
		deadline := time.Now().Add(60 * time.Second)
		for {
			waiting := 0
			for _, r := range readers {
				if !r.failed.Load() && int(r.reached.Load()) <= i {
					waiting++
				}
			}
			if waiting == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	newest := marks[len(marks)-1]
	var errs []string
	for _, r := range readers {
		switch {
		case r.failed.Load():
			res.dropped++
			if err, _ := r.err.Load().(error); err != nil && len(errs) < 3 {
				var ce websocket.CloseError
				if errors.As(err, &ce) {
					errs = append(errs, fmt.Sprintf("close %d %q", ce.Code, ce.Reason))
				} else {
					errs = append(errs, err.Error())
				}
			}
		case r.lastAt.Load() != newest:
			res.stale++
		}
		for i, t := range r.seen {
			if !t.IsZero() {
				res.lat = append(res.lat, t.Sub(starts[i]))
			}
		}
	}
	if len(errs) > 0 {
		tb.Logf("dropped readers, e.g.: %s", strings.Join(errs, "; "))
	}
	return res
}

// Issue 12 item 1: a burst of samples (a reporter's spool after an outage)
// must not disconnect readers that read: 50 WebSocket and 50 SSE readers,
// one batch of 1,000 newer samples, then a drain of 10 batches of 50. None
// is dropped and every one ends on the newest sample. (Before, 64 queued
// frames made a client "slow": most readers were closed with 1008 or had
// their stream ended.)
func TestBurstDropsNoReader(t *testing.T) {
	e := newEnv(t, streamer.Config{PingInterval: time.Hour})
	res := liveBurst(t, e, 50, 50, 1000, 10, 50)
	t.Log(res)
	if res.dropped != 0 || res.stale != 0 {
		t.Fatalf("%v", res)
	}
	if n := e.srv.Stats().SlowClientsDrops; n != 0 {
		t.Fatalf("%d clients counted as slow", n)
	}
}

// BenchmarkLiveBurst measures the burst of TestBurstDropsNoReader: readers
// dropped and the latency of the others, from the start of the ingest
// request to the receipt of its newest sample (see docs/PERFORMANCE.md,
// "Live burst"). "steady" is the same readers and drain without the burst
// of 1,000 (every batch of 50 fits the old 64-frame queue), for comparison.
// Run with -benchtime=1x.
func BenchmarkLiveBurst(b *testing.B) {
	for _, bc := range []struct {
		name  string
		burst int
	}{{"burst=1000+10x50", 1000}, {"steady=11x50", 50}} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				e := newEnv(b, streamer.Config{PingInterval: time.Hour})
				res := liveBurst(b, e, 50, 50, bc.burst, 10, 50)
				b.Log(res)
				b.ReportMetric(float64(res.dropped), "dropped")
				b.ReportMetric(float64(res.percentile(0.5).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(res.percentile(0.95).Microseconds())/1000, "p95-ms")
				b.ReportMetric(float64(res.ingest.Microseconds())/1000, "ingest-ms")
			}
		})
	}
}
