package evaluator_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/evaluator"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/notify"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

// cmdCounter counts the Redis commands a client sends (pipelined ones
// one by one).
type cmdCounter struct{ n atomic.Int64 }

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { c.n.Add(1); return next(ctx, cmd) }
}
func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { c.n.Add(int64(len(cmds))); return next(ctx, cmds) }
}

// BenchmarkEvaluatePass is one evaluation pass over 10,000 servers and 5
// rules (no-data on all, four thresholds) seeded in a real Redis through
// the store's own ingest, with varied values so some series are pending
// or firing. It reports the Redis commands one pass sends.
//
//	go test -run '^$' -bench EvaluatePass -benchtime 20x ./shared/evaluator
func BenchmarkEvaluatePass(b *testing.B) {
	r := redistest.New(b)
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	ms, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ms.Close()
	ctx := context.Background()
	const servers = 10000
	now := time.Now().UTC().Truncate(time.Second)
	var wg sync.WaitGroup
	ids := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				cpu := rand.Float64() * 80
				if i%50 == 0 {
					cpu = 95 // 2 % over the cpu threshold
				}
				at := now.Add(-time.Duration(i%10) * time.Second)
				if i%200 == 0 {
					at = now.Add(-5 * time.Minute) // 0.5 % silent
				}
				s := metric.Sample{CollectedAt: at, CPUUsagePercent: cpu, CPULoad1m: cpu / 10, RAMTotalBytes: 16 << 30, RAMUsedBytes: uint64(cpu / 100 * float64(16<<30)),
					RAMAvailableBytes: 8 << 30, RAMUsagePercent: cpu * 0.9, DiskTotalBytes: 100 << 30, DiskUsedBytes: 40 << 30, DiskAvailableBytes: 60 << 30,
					DiskUsagePercent: 40 + float64(i%50), NetworkRxBytes: uint64(i) << 20, NetworkTxBytes: uint64(i) << 19, UptimeSeconds: 86400,
					CPUs:  []metric.CPU{{Name: "cpu0", Model: "Neoverse-N1", Usage: cpu}, {Name: "cpu1", Model: "Neoverse-N1", Usage: cpu}},
					Disks: []metric.Disk{{Name: "/dev/nvme0n1p1", Mountpoint: "/", Total: 100 << 30, Used: 40 << 30, Free: 60 << 30}}}
				id := fmt.Sprintf("web-%05d", i)
				if _, err := ms.Ingest(ctx, id, []metric.Sample{s}); err != nil {
					b.Error(err)
				}
				if err := ms.RecordInterval(ctx, id, 10*time.Second); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := range servers {
		ids <- i
	}
	close(ids)
	wg.Wait()

	as := alertstore.New(ms.Client(), ms.Prefix(), ms.Wrap)
	for _, body := range []string{
		`{"name":"down","metric":"nodata","for":"30s","servers":["*"],"channels":[]}`,
		`{"name":"cpu","metric":"cpuUsagePercent","op":">","value":90,"for":"2m","servers":["*"],"channels":[]}`,
		`{"name":"ram","metric":"ramUsagePercent","op":">","value":95,"for":"2m","servers":["web-*"],"channels":[]}`,
		`{"name":"disk","metric":"diskUsagePercent","op":">=","value":85,"clear":80,"for":"5m","servers":["*"],"channels":[]}`,
		`{"name":"load","metric":"cpuLoad1m","op":">","value":8.5,"for":"1m","servers":["web-0*"],"channels":[]}`,
	} {
		rule, err := alert.DecodeRule([]byte(body))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := as.CreateRule(ctx, rule); err != nil {
			b.Fatal(err)
		}
	}
	e := evaluator.New(ms, as, notify.New("", nil), evaluator.Config{}, nil, nil)
	first, err := e.Evaluate(ctx) // creates the pending/firing states
	if err != nil {
		b.Fatal(err)
	}
	var cc cmdCounter
	ms.Client().AddHook(&cc)
	var st evaluator.Stats
	b.ResetTimer()
	for b.Loop() {
		if st, err = e.Evaluate(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cc.n.Load())/float64(b.N), "redis-cmds/pass")
	b.ReportMetric(float64(st.Series), "series/pass")
	b.ReportMetric(float64(first.Transitions), "states")
}

// BenchmarkHostDownLatency measures, in real time, from a host's last
// sample to its firing webhook arriving, with the long-running evaluator
// (every 5 s) and hosts reporting every 10 s, for: 30s. 20 hosts each
// have their own two rules: one with the default 30 s group window, one
// with none ("group": "0s"), each to its own local webhook, so both
// latencies are measured per host. Hosts stop at random moments. About
// two minutes.
//
//	go test -run '^$' -bench HostDownLatency -benchtime 1x ./shared/evaluator
func BenchmarkHostDownLatency(b *testing.B) {
	for b.Loop() {
		hostDownLatency(b)
	}
}

func hostDownLatency(b *testing.B) {
	r := redistest.New(b)
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	ms, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ms.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	as := alertstore.New(ms.Client(), ms.Prefix(), ms.Wrap)

	type arrival struct {
		server string
		at     time.Time
	}
	var mu sync.Mutex
	got := map[string][]arrival{}
	for _, name := range []string{"grouped", "single"} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			var body notify.WebhookBody
			at := time.Now()
			if err := jsonDecode(req, &body); err == nil && body.Status == "firing" {
				mu.Lock()
				for _, a := range body.Alerts {
					got[name] = append(got[name], arrival{a.ServerID, at})
				}
				mu.Unlock()
			}
		}))
		srv.Listener, _ = net.Listen("tcp", "127.0.0.1:0")
		srv.Start()
		defer srv.Close()
		c, _ := alert.DecodeChannel([]byte(`{"name":"`+name+`","url":"webhook+`+srv.URL+`"}`), time.Now())
		if err := as.CreateChannel(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	const hosts = 20
	last := make([]time.Time, hosts)
	for i := range hosts {
		id := fmt.Sprintf("h%02d", i)
		for _, rb := range []string{
			`{"name":"down-` + id + `","metric":"nodata","for":"30s","servers":["` + id + `"],"channels":["grouped"]}`,
			`{"name":"down1-` + id + `","metric":"nodata","for":"30s","servers":["` + id + `"],"channels":["single"],"group":"0s"}`,
		} {
			rule, _ := alert.DecodeRule([]byte(rb))
			if _, err := as.CreateRule(ctx, rule); err != nil {
				b.Fatal(err)
			}
		}
	}
	e := evaluator.New(ms, as, notify.New("", nil), evaluator.Config{}, slog.New(slog.DiscardHandler), nil)
	go func() { _ = e.Run(ctx, 5*time.Second) }()

	// Each host reports every 10 s (its own phase) and stops after 20-40 s.
	var hw sync.WaitGroup
	for i := range hosts {
		hw.Add(1)
		go func() {
			defer hw.Done()
			id := fmt.Sprintf("h%02d", i)
			time.Sleep(time.Duration(rand.IntN(10000)) * time.Millisecond)
			stop := time.Now().Add(20*time.Second + time.Duration(rand.IntN(20000))*time.Millisecond)
			for time.Now().Before(stop) {
				at := time.Now()
				s := metric.Sample{CollectedAt: at, CPUUsagePercent: 5, RAMTotalBytes: 2, RAMUsedBytes: 1, RAMAvailableBytes: 1, RAMUsagePercent: 50, DiskTotalBytes: 2, DiskUsedBytes: 1, DiskAvailableBytes: 1, DiskUsagePercent: 50}
				if _, err := ms.Ingest(ctx, id, []metric.Sample{s}); err != nil {
					b.Error(err)
				}
				_ = ms.RecordInterval(ctx, id, 10*time.Second)
				last[i] = at.Truncate(time.Second) // collectedAt is stored to the second
				time.Sleep(10 * time.Second)
			}
		}()
	}
	hw.Wait()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		mu.Lock()
		n1, n2 := len(got["grouped"]), len(got["single"])
		mu.Unlock()
		if n1 >= hosts && n2 >= hosts {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"single", "grouped"} {
		var fromLast, afterDeadline []float64
		for _, a := range got[name] {
			var i int
			fmt.Sscanf(a.server, "h%02d", &i)
			d := a.at.Sub(last[i]).Seconds()
			fromLast = append(fromLast, d)
			afterDeadline = append(afterDeadline, d-40)
		}
		if len(fromLast) != hosts {
			b.Fatalf("%s: %d webhooks, want %d", name, len(fromLast), hosts)
		}
		b.ReportMetric(pct(fromLast, 50), name+"-p50-s-from-last-sample")
		b.ReportMetric(pct(fromLast, 95), name+"-p95-s-from-last-sample")
		b.ReportMetric(pct(afterDeadline, 50), name+"-p50-s-after-deadline")
		b.ReportMetric(pct(afterDeadline, 95), name+"-p95-s-after-deadline")
	}
}

func pct(xs []float64, p int) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// BenchmarkLambdaScheduleLatency simulates the scheduled Lambda alone on
// a simulated clock: the real Evaluator.Once runs once a minute (with the
// handler's 24 s delivery horizon of a 29 s invocation) over 100 hosts
// reporting every 10 s that stop at random moments, one "*" nodata rule
// (for: 30s, default 30 s group window), real Redis and a real local
// webhook. It reports when each host's firing notice arrived, after its
// deadline (last sample + 10 s + 30 s), in simulated seconds.
//
//	go test -run '^$' -bench LambdaScheduleLatency -benchtime 1x ./shared/evaluator
func BenchmarkLambdaScheduleLatency(b *testing.B) {
	for b.Loop() {
		lambdaScheduleLatency(b)
	}
}

func lambdaScheduleLatency(b *testing.B) {
	r := redistest.New(b)
	clk := &clock{t: time.Now().UTC().Truncate(time.Minute)}
	start := clk.Now()
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix, cfg.Now = r.URL, r.Prefix, clk.Now
	ms, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ms.Close()
	ctx := context.Background()
	as := alertstore.New(ms.Client(), ms.Prefix(), ms.Wrap)
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body notify.WebhookBody
		if jsonDecode(req, &body) == nil && body.Status == "firing" {
			mu.Lock()
			for _, a := range body.Alerts {
				if _, ok := arrived[a.ServerID]; !ok {
					arrived[a.ServerID] = clk.Now()
				}
			}
			mu.Unlock()
		}
	}))
	defer srv.Close()
	c, _ := alert.DecodeChannel([]byte(`{"name":"ops","url":"webhook+`+srv.URL+`"}`), clk.Now())
	_ = as.CreateChannel(ctx, c)
	rule, _ := alert.DecodeRule([]byte(`{"name":"down","metric":"nodata","for":"30s","servers":["*"],"channels":["ops"]}`))
	_, _ = as.CreateRule(ctx, rule)
	e := evaluator.New(ms, as, notify.New("", clk.Now), evaluator.Config{
		Wait: func(_ context.Context, t time.Time) error { clk.Set(t); return nil },
	}, nil, clk.Now)

	const hosts = 100
	stop := make([]time.Duration, hosts)
	phase := make([]time.Duration, hosts)
	last := make([]time.Time, hosts)
	for i := range hosts {
		stop[i] = 2*time.Minute + time.Duration(rand.IntN(480))*time.Second
		phase[i] = time.Duration(rand.IntN(10)) * time.Second
	}
	invokeAt := time.Duration(rand.IntN(6)) * 10 * time.Second // the schedule's phase, on the 10 s ticks
	for T := time.Duration(0); T <= 14*time.Minute; T += 10 * time.Second {
		clk.Set(start.Add(T))
		for i := range hosts {
			at := start.Add(T - phase[i])
			if T-phase[i] < 0 || T > stop[i] {
				continue
			}
			s := metric.Sample{CollectedAt: at, RAMTotalBytes: 2, RAMUsedBytes: 1, RAMAvailableBytes: 1, RAMUsagePercent: 50}
			id := fmt.Sprintf("h%03d", i)
			if _, err := ms.Ingest(ctx, id, []metric.Sample{s}); err != nil {
				b.Fatal(err)
			}
			_ = ms.RecordInterval(ctx, id, 10*time.Second)
			last[i] = at
		}
		if (T-invokeAt)%time.Minute == 0 && T >= invokeAt {
			if _, err := e.Once(ctx, clk.Now().Add(24*time.Second)); err != nil {
				b.Fatal(err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var after []float64
	for i := range hosts {
		at, ok := arrived[fmt.Sprintf("h%03d", i)]
		if !ok {
			ds, _ := as.Deliveries(ctx, 20)
			b.Fatalf("h%03d: no firing notice (stop %s, %d arrived, deliveries %+v)", i, stop[i], len(arrived), ds)
		}
		after = append(after, at.Sub(last[i].Add(40*time.Second)).Seconds())
	}
	b.ReportMetric(pct(after, 50), "p50-s-after-deadline")
	b.ReportMetric(pct(after, 95), "p95-s-after-deadline")
	b.ReportMetric(pct(after, 100), "max-s-after-deadline")
}
