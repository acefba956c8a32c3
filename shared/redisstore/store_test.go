package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// base is a fixed instant on a 30-minute boundary, so the bucket math in
// the tests is easy to follow.
var base = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// clock is the injected time source: tests move it instead of sleeping.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// backend gives a test a Redis URL and an isolated key prefix.
type backend struct {
	name string
	open func(t *testing.T) (url, prefix string)
}

// backends: every test runs against a real redis-server and, since
// miniredis runs our Lua (gopher-lua), against miniredis too.
var backends = []backend{
	{"redis", func(t *testing.T) (string, string) {
		r := redistest.New(t)
		return slowOK(r.URL), r.Prefix
	}},
	{"miniredis", func(t *testing.T) (string, string) {
		m := miniredis.RunT(t)
		return slowOK("redis://" + m.Addr()), "vitals:"
	}},
}

// slowOK gives the suite's client a 10 s read timeout: these tests check
// storage semantics, and one of them ingests 4,000 samples in one batch,
// which can take longer than the default 2 s on a machine busy with other
// tests (and miniredis runs the Lua in gopher-lua, far slower than Redis).
// The default timeouts have their own tests (bounds_test.go).
func slowOK(url string) string {
	if strings.Contains(url, "?") {
		return url + "&read_timeout=10s"
	}
	return url + "?read_timeout=10s"
}

// suite runs fn as a parallel subtest per backend.
func suite(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

func openOn(t *testing.T, b backend, mod func(*Config)) (*Store, *clock) {
	t.Helper()
	url, prefix := b.open(t)
	c := &clock{t: base.Add(time.Hour)}
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.Prefix = prefix
	cfg.Now = c.Now
	if mod != nil {
		mod(&cfg)
	}
	s, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

func u64(v uint64) *uint64   { return &v }
func f64(v float64) *float64 { return &v }

func sample(at time.Time, cpu float64) metric.Sample {
	return metric.Sample{
		CollectedAt:     at,
		CPUUsagePercent: cpu, CPULoad1m: cpu / 10, CPULoad5m: 1, CPULoad15m: 0.5,
		RAMTotalBytes: 8 << 30, RAMUsedBytes: 4 << 30, RAMAvailableBytes: 4 << 30, RAMUsagePercent: 50,
		DiskTotalBytes: 100 << 30, DiskUsedBytes: 40 << 30, DiskAvailableBytes: 60 << 30, DiskUsagePercent: 40,
		NetworkRxBytes: uint64(at.Unix()), NetworkTxBytes: 2 * uint64(at.Unix()), UptimeSeconds: uint64(at.Unix() - base.Unix()),
		SwapTotalBytes: u64(2 << 30), SwapUsedBytes: u64(1 << 20),
		NetworkRxBytesPerSec: f64(cpu * 100), NetworkTxBytesPerSec: f64(cpu * 10),
	}
}

func mustIngest(t *testing.T, s *Store, id string, batch []metric.Sample) metric.IngestResult {
	t.Helper()
	res, err := s.Ingest(context.Background(), id, batch)
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res
}

func points(t *testing.T, s *Store, id string, p metric.Period, now time.Time) []metric.ServerMetric {
	t.Helper()
	pts, err := s.ServerMetrics(context.Background(), id, p, now)
	if err != nil {
		t.Fatalf("ServerMetrics(%s): %v", p.Name, err)
	}
	return pts
}

func TestRollupAcrossTiers(t *testing.T) {
	at := base.Add(50 * time.Minute) // in one bucket of every default tier
	cases := []struct {
		name     string
		offsets  []int // seconds after at, in batch order
		cpus     []float64
		wantAvg  float64
		wantMax  float64
		wantLast int // offset whose counters must win
	}{
		{"one sample", []int{0}, []float64{12.5}, 12.5, 12.5, 0},
		{"three in order", []int{0, 3, 6}, []float64{10, 20, 60}, 30, 60, 6},
		{"out of order", []int{6, 0, 3}, []float64{60, 10, 20}, 30, 60, 6},
		{"rounded inputs", []int{1, 2}, []float64{33.333, 66.666}, 50, 66.67, 2},
	}
	tiers := []metric.Period{metric.Period1h, metric.Period6h, metric.Period24h, metric.Period7d}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			suite(t, func(t *testing.T, b backend) {
				s, c := openOn(t, b, nil)
				// Each sample its own Ingest call, to exercise the
				// read-modify-write of stored members, then once more as
				// one batch on a second server (in-script merging).
				for i, off := range tc.offsets {
					mustIngest(t, s, "single", []metric.Sample{sample(at.Add(time.Duration(off)*time.Second), tc.cpus[i])})
				}
				var batch []metric.Sample
				for i, off := range tc.offsets {
					batch = append(batch, sample(at.Add(time.Duration(off)*time.Second), tc.cpus[i]))
				}
				mustIngest(t, s, "batched", batch)
				for _, id := range []string{"single", "batched"} {
					for _, p := range tiers {
						pts := points(t, s, id, p, c.t)
						if len(pts) != 1 {
							t.Fatalf("%s %s: %d points, want 1", id, p.Name, len(pts))
						}
						pt := pts[0]
						last := at.Add(time.Duration(tc.wantLast) * time.Second)
						if pt.Samples != len(tc.offsets) || pt.CPUUsagePercent != tc.wantAvg || pt.CPUUsagePercentMax != tc.wantMax {
							t.Errorf("%s %s: samples %d avg %v max %v, want %d %v %v", id, p.Name, pt.Samples, pt.CPUUsagePercent, pt.CPUUsagePercentMax, len(tc.offsets), tc.wantAvg, tc.wantMax)
						}
						if pt.NetworkRxBytes != uint64(last.Unix()) || pt.NetworkTxBytes != 2*uint64(last.Unix()) || pt.UptimeSeconds != uint64(last.Unix()-base.Unix()) {
							t.Errorf("%s %s: counters %d/%d/%d, want those of %s", id, p.Name, pt.NetworkRxBytes, pt.NetworkTxBytes, pt.UptimeSeconds, last)
						}
						if pt.RAMUsedBytes != 4<<30 || pt.RAMUsedBytesMax != 4<<30 || pt.SwapTotalBytes != 2<<30 || pt.SwapUsedBytes != 1<<20 || pt.RAMTotalBytes != 8<<30 {
							t.Errorf("%s %s: bytes wrong: %+v", id, p.Name, pt)
						}
						res, _ := s.tierFor(p)
						bucket := at.Truncate(res.Resolution)
						if !pt.CollectedAt.Equal(bucket) || pt.ID != metric.PointID(id, res.Resolution, bucket) {
							t.Errorf("%s %s: point %s at %s, want bucket %s", id, p.Name, pt.ID, pt.CollectedAt, bucket)
						}
						if pt.NetworkRxBytesPerSecMax != tc.wantMax*100 && tc.name != "rounded inputs" {
							t.Errorf("%s %s: rx rate max %v", id, p.Name, pt.NetworkRxBytesPerSecMax)
						}
					}
				}
			})
		})
	}
}

func TestOneSecondSamplesBucketTo10s(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		var batch []metric.Sample
		start := base.Add(50 * time.Minute)
		for i := range 30 {
			batch = append(batch, sample(start.Add(time.Duration(i)*time.Second), float64(i)))
		}
		if res := mustIngest(t, s, "fast", batch); res.Accepted != 30 {
			t.Fatalf("accepted %d", res.Accepted)
		}
		pts := points(t, s, "fast", metric.Period1h, c.t)
		if len(pts) != 3 {
			t.Fatalf("%d points at 10s, want 3", len(pts))
		}
		for i, pt := range pts {
			want := 4.5 + 10*float64(i)
			if pt.Samples != 10 || pt.CPUUsagePercent != want || pt.CPUUsagePercentMax != float64(10*i+9) {
				t.Errorf("point %d: samples %d avg %v max %v, want 10 %v %v", i, pt.Samples, pt.CPUUsagePercent, pt.CPUUsagePercentMax, want, 10*i+9)
			}
			if !pt.CollectedAt.Equal(start.Add(time.Duration(10*i) * time.Second)) {
				t.Errorf("point %d at %s", i, pt.CollectedAt)
			}
		}
		if !pts[0].CollectedAt.Before(pts[1].CollectedAt) {
			t.Error("points not oldest first")
		}
		if pts := points(t, s, "fast", metric.Period6h, c.t); len(pts) != 1 || pts[0].Samples != 30 || pts[0].CPUUsagePercent != 14.5 {
			t.Errorf("1m tier: %+v", pts)
		}
	})
}

func TestIdempotency(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		start := base.Add(40 * time.Minute)
		var batch []metric.Sample
		for i := range 20 {
			batch = append(batch, sample(start.Add(time.Duration(i)*5*time.Second), float64(i)))
		}
		if res := mustIngest(t, s, "idem", batch); res != (metric.IngestResult{Accepted: 20}) {
			t.Fatalf("first: %+v", res)
		}
		before := map[string][]metric.ServerMetric{}
		for _, p := range metric.StandardPeriods {
			before[p.Name] = points(t, s, "idem", p, c.t)
		}
		if res := mustIngest(t, s, "idem", batch); res != (metric.IngestResult{Duplicates: 20}) {
			t.Fatalf("re-sent: %+v", res)
		}
		// Overlapping: the last 10 again plus 10 new; and a sub-second
		// variant of a stored second is the same sample.
		over := append([]metric.Sample{}, batch[10:]...)
		for i := 20; i < 30; i++ {
			over = append(over, sample(start.Add(time.Duration(i)*5*time.Second), float64(i)))
		}
		over = append(over, sample(start.Add(500*time.Millisecond), 99))
		if res := mustIngest(t, s, "idem", over); res != (metric.IngestResult{Accepted: 10, Duplicates: 11}) {
			t.Fatalf("overlap: %+v", res)
		}
		for _, p := range metric.StandardPeriods {
			after := points(t, s, "idem", p, c.t)
			total := 0
			for _, pt := range after {
				total += pt.Samples
			}
			if total != 30 {
				t.Errorf("%s: %d samples stored, want 30", p.Name, total)
			}
		}
		// Re-sending the first batch alone changes nothing.
		mustIngest(t, s, "idem", batch)
		if got := points(t, s, "idem", metric.Period1h, c.t); len(got) == 0 || got[0] != before["1h"][0] {
			t.Errorf("first 10s point changed: %+v vs %+v", got[0], before["1h"][0])
		}
	})
}

func TestRetentionAndStale(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		c.t = base
		mustIngest(t, s, "ret", []metric.Sample{sample(base.Add(5*time.Second), 10)})
		key10 := tierKey(s.serverTag("ret"), s.tiers[0])
		key1m := tierKey(s.serverTag("ret"), s.tiers[1])
		// Just under the 10 s tier's retention: still there.
		c.t = base.Add(time.Hour)
		mustIngest(t, s, "ret", []metric.Sample{sample(c.t, 20)})
		if n := s.Client().ZCard(ctx, key10).Val(); n != 2 {
			t.Fatalf("10s tier holds %d, want 2", n)
		}
		// Past it: the old bucket is trimmed on the next write, the 1m
		// tier keeps both.
		c.t = base.Add(time.Hour + 20*time.Second)
		mustIngest(t, s, "ret", []metric.Sample{sample(c.t, 30)})
		if n := s.Client().ZCard(ctx, key10).Val(); n != 2 {
			t.Errorf("10s tier holds %d after trim, want 2", n)
		}
		if n := s.Client().ZCard(ctx, key1m).Val(); n != 2 {
			t.Errorf("1m tier holds %d, want 2", n)
		}
		if ttl := s.Client().TTL(ctx, key10).Val(); ttl <= 0 || ttl > time.Hour+10*time.Second {
			t.Errorf("10s tier TTL %s", ttl)
		}
		// Older than the longest retention: stale, stored nowhere.
		old := sample(c.t.Add(-7*24*time.Hour-time.Minute), 1)
		if res := mustIngest(t, s, "ret", []metric.Sample{old, sample(c.t.Add(time.Second), 5)}); res != (metric.IngestResult{Accepted: 1, Stale: 1}) {
			t.Errorf("stale: %+v", res)
		}
		// Every key of the series carries a TTL (idle series vanish).
		keys, _ := s.Client().Keys(ctx, s.serverTag("ret")+"*").Result()
		for _, k := range keys {
			if ttl := s.Client().TTL(ctx, k).Val(); ttl <= 0 {
				t.Errorf("key %s has no TTL (%s)", k, ttl)
			}
		}
	})
}

// TestSampleAgeHorizon: with a 90-day tier, samples older than the
// sample-age horizon (7 days by default) are stale, and the idempotency
// bitmaps live for the horizon, not for 90 days; a re-send inside the
// horizon is still a duplicate.
func TestSampleAgeHorizon(t *testing.T) {
	long := append(slices.Clone(DefaultTiers), Tier{6 * time.Hour, 90 * 24 * time.Hour})
	suite(t, func(t *testing.T, b backend) {
		for _, tc := range []struct {
			name    string
			age     time.Duration // Config.MaxSampleAge; 0 is the default
			horizon time.Duration
		}{
			{"default", 0, 7 * 24 * time.Hour},
			{"30d", 30 * 24 * time.Hour, 30 * 24 * time.Hour},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, c := openOn(t, b, func(cfg *Config) { cfg.Tiers = long; cfg.MaxSampleAge = tc.age })
				ctx := context.Background()
				id := "horizon-" + tc.name
				inside := sample(c.t.Add(-tc.horizon+time.Hour), 10)
				outside := sample(c.t.Add(-tc.horizon-time.Hour), 20)
				if res := mustIngest(t, s, id, []metric.Sample{outside, inside}); res != (metric.IngestResult{Accepted: 1, Stale: 1}) {
					t.Fatalf("first send: %+v", res)
				}
				// Re-sent just before it leaves the horizon: a duplicate.
				c.t = c.t.Add(50 * time.Minute)
				if res := mustIngest(t, s, id, []metric.Sample{inside}); res != (metric.IngestResult{Duplicates: 1}) {
					t.Fatalf("re-send inside the horizon: %+v", res)
				}
				c.t = c.t.Add(20 * time.Minute)
				if res := mustIngest(t, s, id, []metric.Sample{inside}); res != (metric.IngestResult{Stale: 1}) {
					t.Fatalf("re-send past the horizon: %+v", res)
				}
				day := inside.CollectedAt.Unix() / 86400
				ttl := s.Client().TTL(ctx, seenKey(s.serverTag(id), day)).Val()
				// Its day's end plus the horizon, counted from the first send.
				end := time.Unix((day+1)*86400, 0).Add(tc.horizon)
				if want := end.Sub(c.t.Add(-70 * time.Minute)); ttl <= 0 || ttl > want {
					t.Errorf("bitmap TTL %s, want at most %s", ttl, want)
				}
			})
		}
	})
}

func TestPeriodMapping(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		extra, err := ParsePeriods("30d, 90d")
		if err != nil {
			t.Fatal(err)
		}
		tiers, err := ParseTiers("10s:1h,1m:6h,5m:24h,30m:7d,2h:90d")
		if err != nil {
			t.Fatal(err)
		}
		s, c := openOn(t, b, func(cfg *Config) {
			cfg.Tiers = tiers
			cfg.Periods = extra[:1]
		})
		want := map[string]time.Duration{"1h": 10 * time.Second, "6h": time.Minute, "24h": 5 * time.Minute, "7d": 30 * time.Minute, "30d": 2 * time.Hour}
		var names []string
		for _, p := range s.Periods() {
			names = append(names, p.Name)
			tier, err := s.tierFor(p)
			if err != nil || tier.Resolution != want[p.Name] {
				t.Errorf("%s → %v (%v), want %s", p.Name, tier.Resolution, err, want[p.Name])
			}
			if n := int(p.Window / tier.Resolution); n > s.maxPoints {
				t.Errorf("%s: %d points > %d", p.Name, n, s.maxPoints)
			}
		}
		if strings.Join(names, ",") != "1h,6h,24h,7d,30d" {
			t.Errorf("Periods() = %v", names)
		}
		_, err = s.ServerMetrics(context.Background(), "x", metric.Period{Name: "1y", Window: 365 * 24 * time.Hour}, c.t)
		if !errors.Is(err, metric.ErrInvalid) {
			t.Errorf("1y: %v, want ErrInvalid", err)
		}
		// More than an hour of 1 s samples: the 1h query returns at most
		// 360 points.
		var batch []metric.Sample
		for i := range 4000 {
			batch = append(batch, sample(c.t.Add(-time.Duration(i)*time.Second), 1))
		}
		mustIngest(t, s, "many", batch)
		if pts := points(t, s, "many", metric.Period1h, c.t); len(pts) != 360 {
			t.Errorf("1h: %d points, want 360", len(pts))
		}
		if pts := points(t, s, "many", metric.Period6h, c.t); len(pts) != 68 {
			t.Errorf("6h: %d points, want 68", len(pts))
		}
	})
}

func TestInstancesAndIndex(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		dbID := metric.InstanceUUID("app1", "postgres")
		webID := metric.InstanceUUID("app1", "nginx")
		mk := func(at time.Time, cpu float64) metric.Sample {
			smp := sample(at, cpu)
			smp.Instances = []metric.InstanceSample{
				{InstanceID: dbID, Name: "postgres", CPUUsagePercent: cpu, MemoryUsedBytes: 100, MemoryLimitBytes: 1000, MemoryUsagePercent: 10, DiskReadBytes: uint64(at.Unix()), DiskWriteBytes: 7, DiskUsedBytes: u64(5), DiskTotalBytes: u64(50)},
				{InstanceID: webID, Name: "nginx", CPUUsagePercent: 1, MemoryUsedBytes: 10, MemoryLimitBytes: 100, MemoryUsagePercent: 10},
			}
			return smp
		}
		at := base.Add(55 * time.Minute)
		mustIngest(t, s, "app1", []metric.Sample{mk(at, 10), mk(at.Add(2*time.Second), 30)})
		c.t = base.Add(time.Hour + 5*time.Minute)
		mustIngest(t, s, "other", []metric.Sample{sample(base.Add(time.Hour+time.Minute), 1)})

		info, err := s.Instance(ctx, dbID)
		if err != nil || info != (metric.InstanceInfo{ID: dbID, Name: "postgres", ServerID: "app1"}) {
			t.Fatalf("Instance: %+v %v", info, err)
		}
		pts, err := s.InstanceMetrics(ctx, dbID, metric.Period1h, c.t)
		if err != nil || len(pts) != 1 {
			t.Fatalf("InstanceMetrics: %+v %v", pts, err)
		}
		p := pts[0]
		if p.Samples != 2 || p.CPUUsagePercent != 20 || p.CPUUsagePercentMax != 30 || p.DiskReadBytes != uint64(at.Unix()+2) ||
			p.DiskUsedBytes == nil || *p.DiskUsedBytes != 5 || p.Name != "postgres" || p.ServerID != "app1" || p.InstanceID != dbID {
			t.Errorf("instance point: %+v", p)
		}
		if pts, _ := s.InstanceMetrics(ctx, webID, metric.Period1h, c.t); len(pts) != 1 || pts[0].DiskUsedBytes != nil {
			t.Errorf("nginx has no data path, got %+v", pts)
		}
		latest, err := s.LatestInstance(ctx, dbID)
		if err != nil || latest.CPUUsagePercent != 30 || !latest.CollectedAt.Equal(at.Add(2*time.Second)) || latest.Samples != 1 {
			t.Errorf("LatestInstance: %+v %v", latest, err)
		}

		servers, err := s.Servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(servers) != 2 || servers[0].ID != "other" || servers[1].ID != "app1" {
			t.Fatalf("Servers not newest first: %+v", servers)
		}
		if !servers[1].LastSeenAt.Equal(at.Add(2*time.Second)) || len(servers[1].Instances) != 2 || servers[1].Instances[0].Name != "nginx" || len(servers[0].Instances) != 0 || servers[0].Instances == nil {
			t.Errorf("Servers: %+v", servers)
		}

		// After the longest retention without a report, the index forgets
		// (the entries are hidden at once and deleted by the next ingest).
		c.t = at.Add(7*24*time.Hour + 3*time.Second)
		servers, err = s.Servers(ctx)
		if err != nil || len(servers) != 1 || servers[0].ID != "other" {
			t.Errorf("after retention: %+v %v", servers, err)
		}
		if _, err := s.Instance(ctx, dbID); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("pruned instance: %v", err)
		}

		unknown := metric.InstanceUUID("nope", "nope")
		if _, err := s.Instance(ctx, unknown); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("Instance unknown: %v", err)
		}
		if _, err := s.InstanceMetrics(ctx, unknown, metric.Period1h, c.t); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("InstanceMetrics unknown: %v", err)
		}
		if _, err := s.LatestInstance(ctx, unknown); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("LatestInstance unknown: %v", err)
		}
	})
}

// TestServersOnlyReads: a process with shorter tiers than ingest (a
// streamer started without VITALS_TIERS) hides servers and instances older
// than its own horizon, but does not delete them from the shared index.
func TestServersOnlyReads(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		url, prefix := b.open(t)
		c := &clock{t: base}
		open := func(tiers []Tier) *Store {
			cfg := DefaultConfig()
			cfg.URL, cfg.Prefix, cfg.Now = url, prefix, c.Now
			if tiers != nil {
				cfg.Tiers = tiers
			}
			s, err := Open(ctx, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		}
		long := open(append(slices.Clone(DefaultTiers), Tier{6 * time.Hour, 90 * 24 * time.Hour}))
		short := open(nil)
		id := metric.InstanceUUID("quiet", "db")
		smp := sample(base, 1)
		smp.Instances = []metric.InstanceSample{{InstanceID: id, Name: "db"}}
		mustIngest(t, long, "quiet", []metric.Sample{smp})
		c.t = base.Add(8 * 24 * time.Hour)
		if got, err := short.Servers(ctx); err != nil || len(got) != 0 {
			t.Errorf("7d store lists a server idle for 8 days: %+v %v", got, err)
		}
		if _, err := short.Instance(ctx, id); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("7d store finds an instance idle for 8 days: %v", err)
		}
		// Another server's ingest prunes the index with the 90d horizon,
		// not the 7d sample-age one.
		busy := sample(c.t, 2)
		busy.Instances = []metric.InstanceSample{{InstanceID: metric.InstanceUUID("busy", "web"), Name: "web"}}
		mustIngest(t, long, "busy", []metric.Sample{busy})
		got, err := long.Servers(ctx)
		if err != nil || len(got) != 2 || got[1].ID != "quiet" || len(got[1].Instances) != 1 {
			t.Fatalf("90d store after the 7d store listed and another server reported: %+v %v", got, err)
		}
		if info, err := long.Instance(ctx, id); err != nil || info.Name != "db" {
			t.Errorf("90d store's instance: %+v %v", info, err)
		}
	})
}

func TestUnknownServer(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		for _, id := range []string{"ghost", "bad{id}"} {
			if _, err := s.ServerMetrics(ctx, id, metric.Period1h, c.t); !errors.Is(err, metric.ErrNotFound) {
				t.Errorf("ServerMetrics(%s): %v", id, err)
			}
			if _, err := s.LatestServer(ctx, id); !errors.Is(err, metric.ErrNotFound) {
				t.Errorf("LatestServer(%s): %v", id, err)
			}
			if _, err := s.Snapshot(ctx, id); !errors.Is(err, metric.ErrNotFound) {
				t.Errorf("Snapshot(%s): %v", id, err)
			}
		}
		// Known server, nothing in the window: empty, not an error.
		mustIngest(t, s, "quiet", []metric.Sample{sample(base.Add(-2*time.Hour), 1)})
		if pts := points(t, s, "quiet", metric.Period1h, c.t); len(pts) != 0 {
			t.Errorf("quiet: %+v", pts)
		}
		if _, err := s.Ingest(ctx, "bad{id}", []metric.Sample{sample(base, 1)}); !errors.Is(err, metric.ErrInvalid) {
			t.Errorf("Ingest bad id: %v", err)
		}
	})
}

func TestSnapshotNewerWins(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, _ := openOn(t, b, nil)
		ctx := context.Background()
		newer := sample(base.Add(50*time.Minute), 70)
		newer.CPUs = []metric.CPU{{Name: "cpu0", Model: "Xeon", Usage: 70}}
		newer.Disks = []metric.Disk{{Name: "/dev/sda1", Mountpoint: "/", Total: 10, Used: 4, Free: 6}}
		newer.Host = &metric.HostInfo{Hostname: "h1"}
		mustIngest(t, s, "snap", []metric.Sample{newer})
		mustIngest(t, s, "snap", []metric.Sample{sample(base.Add(40*time.Minute), 10)})
		snap, err := s.Snapshot(ctx, "snap")
		if err != nil {
			t.Fatal(err)
		}
		if snap.ServerID != "snap" || !snap.CollectedAt.Equal(newer.CollectedAt) || len(snap.CPUs) != 1 || snap.CPUs[0].Model != "Xeon" || len(snap.Disks) != 1 || snap.Host == nil || snap.Host.Hostname != "h1" || snap.SwapTotalBytes == nil {
			t.Errorf("snapshot: %+v", snap)
		}
		latest, err := s.LatestServer(ctx, "snap")
		want := metric.RawServerMetric("snap", &newer, 10*time.Second)
		if err != nil || latest != want {
			t.Errorf("LatestServer: %+v %v, want %+v", latest, err, want)
		}
		newest := sample(base.Add(55*time.Minute), 1)
		mustIngest(t, s, "snap", []metric.Sample{newest, sample(base.Add(30*time.Minute), 2)})
		if snap, _ := s.Snapshot(ctx, "snap"); !snap.CollectedAt.Equal(newest.CollectedAt) || len(snap.CPUs) != 0 {
			t.Errorf("snapshot not replaced by newer: %+v", snap)
		}
	})
}

func TestPublish(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, _ := openOn(t, b, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		inID := metric.InstanceUUID("live", "db")
		sub := s.Client().Subscribe(ctx, s.ServerChannel("live"), s.InstanceChannel(inID))
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil { // subscription confirmed
			t.Fatal(err)
		}
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		mk := func(at time.Time) metric.Sample {
			smp := sample(at, 5)
			smp.Instances = []metric.InstanceSample{{InstanceID: inID, Name: "db", CPUUsagePercent: 3}}
			return smp
		}
		s1, s2 := mk(base.Add(50*time.Minute)), mk(base.Add(50*time.Minute+10*time.Second))
		mustIngest(t, s, "live", []metric.Sample{s2, s1}) // both new, sent oldest first
		mustIngest(t, s, "live", []metric.Sample{s1})     // duplicate: nothing
		mustIngest(t, s, "live", []metric.Sample{mk(base.Add(40 * time.Minute))})
		s3 := mk(base.Add(51 * time.Minute)) // backfilled older one above: nothing; this one: yes
		mustIngest(t, s, "live", []metric.Sample{s3})

		var gotServer []metric.ServerMetric
		var gotInstance []metric.InstanceMetric
		for len(gotServer) < 3 || len(gotInstance) < 3 {
			msg, err := sub.ReceiveMessage(ctx)
			if err != nil {
				t.Fatalf("receive: %v (server %d, instance %d)", err, len(gotServer), len(gotInstance))
			}
			if msg.Channel == s.ServerChannel("live") {
				var m metric.ServerMetric
				if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil {
					t.Fatal(err)
				}
				gotServer = append(gotServer, m)
			} else {
				var m metric.InstanceMetric
				if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil {
					t.Fatal(err)
				}
				gotInstance = append(gotInstance, m)
			}
		}
		for i, want := range []metric.Sample{s1, s2, s3} {
			w := metric.RawServerMetric("live", &want, 10*time.Second)
			if !gotServer[i].CollectedAt.Equal(w.CollectedAt) || gotServer[i].ID != w.ID || gotServer[i].CPUUsagePercent != 5 {
				t.Errorf("server message %d: %+v, want %+v", i, gotServer[i], w)
			}
			if !gotInstance[i].CollectedAt.Equal(want.CollectedAt) || gotInstance[i].InstanceID != inID || gotInstance[i].ServerID != "live" {
				t.Errorf("instance message %d: %+v", i, gotInstance[i])
			}
		}
		// Nothing else was published (the duplicate and the backfill).
		_ = s.Client().Publish(ctx, s.ServerChannel("live"), "end").Err()
		for {
			msg, err := sub.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if msg.Channel == s.ServerChannel("live") {
				if msg.Payload != "end" {
					t.Errorf("unexpected extra message: %s", msg.Payload)
				}
				break
			}
			t.Errorf("unexpected extra instance message: %s", msg.Payload)
		}
	})
}

func TestHostKeys(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		if _, err := s.HostKey(ctx, "h1"); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("unknown host: %v", err)
		}
		k1, err := s.AddHost(ctx, "h2")
		if err != nil || len(k1) != 64 {
			t.Fatalf("AddHost: %q %v", k1, err)
		}
		c.t = c.t.Add(time.Minute)
		if _, err := s.AddHost(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		got, err := s.HostKey(ctx, "h2")
		if err != nil || string(got) != string(k1) {
			t.Errorf("HostKey: %v", err)
		}
		enrolled := c.t.Add(-time.Minute)
		c.t = c.t.Add(time.Minute)
		k2, _ := s.AddHost(ctx, "h2") // rotate
		if got, _ := s.HostKey(ctx, "h2"); string(got) != string(k2) || string(k2) == string(k1) {
			t.Error("rotation did not replace the key")
		}
		hosts, err := s.Hosts(ctx)
		if err != nil || len(hosts) != 2 || hosts[0].ServerID != "h1" || hosts[1].ServerID != "h2" ||
			!hosts[0].EnrolledAt.Equal(c.t.Add(-time.Minute)) || !hosts[0].KeyCreatedAt.Equal(hosts[0].EnrolledAt) ||
			!hosts[1].EnrolledAt.Equal(enrolled) || !hosts[1].KeyCreatedAt.Equal(c.t) {
			t.Errorf("Hosts (a rotation keeps the enrolment time): %+v %v", hosts, err)
		}
		// An entry in the older two-field form still reads.
		s.rdb.HSet(ctx, s.hostsKey(), "h3", strconv.FormatInt(c.t.UnixNano(), 10)+" oldkey")
		if got, err := s.HostKey(ctx, "h3"); err != nil || string(got) != "oldkey" {
			t.Errorf("old entry: %q %v", got, err)
		}
		if err := s.RevokeHost(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.HostKey(ctx, "h2"); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("revoked: %v", err)
		}
		if err := s.RevokeHost(ctx, "h2"); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("revoke twice: %v", err)
		}
		if _, err := s.AddHost(ctx, "bad id"); !errors.Is(err, metric.ErrInvalid) {
			t.Errorf("bad id: %v", err)
		}
	})
}

func TestSeriesKeysShareHashTag(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, _ := openOn(t, b, nil)
		ctx := context.Background()
		inID := metric.InstanceUUID("tagged", "db")
		smp := sample(base.Add(50*time.Minute), 1)
		smp.Instances = []metric.InstanceSample{{InstanceID: inID, Name: "db"}}
		// Two days, so two seen bitmaps.
		mustIngest(t, s, "tagged", []metric.Sample{smp, sample(base.Add(-13*time.Hour), 2)})
		if _, err := s.AddHost(ctx, "tagged"); err != nil {
			t.Fatal(err)
		}
		keys, err := s.Client().Keys(ctx, s.prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		global := map[string]bool{s.serversKey(): true, s.instancesKey(): true, s.instancesSeenKey(): true, s.hostsKey(): true}
		var server, instance int
		for _, k := range keys {
			switch {
			case global[k]:
			case strings.HasPrefix(k, s.prefix+"{s:tagged}:"):
				server++
			case strings.HasPrefix(k, s.prefix+"{i:"+inID+"}:"):
				instance++
			default:
				t.Errorf("key %s carries no series hash tag", k)
			}
		}
		// 4 tiers + latest + 2 day bitmaps + its live instances; instance:
		// 4 tiers + latest + 1 bitmap.
		if server != 8 || instance != 6 {
			t.Errorf("server keys %d, instance keys %d; keys: %v", server, instance, keys)
		}
	})
}

func TestScriptCacheFlushed(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, _ := openOn(t, b, nil)
		ctx := context.Background()
		inID := metric.InstanceUUID("flushed", "db")
		mk := func(at time.Time) metric.Sample {
			smp := sample(at, 1)
			smp.Instances = []metric.InstanceSample{{InstanceID: inID, Name: "db"}}
			return smp
		}
		first := []metric.Sample{mk(base.Add(50 * time.Minute))}
		mustIngest(t, s, "flushed", first)
		// As after a Redis restart: the scripts are gone, the data is not.
		if err := s.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		batch := append(first, mk(base.Add(51*time.Minute)))
		if res := mustIngest(t, s, "flushed", batch); res != (metric.IngestResult{Accepted: 1, Duplicates: 1}) {
			t.Errorf("after SCRIPT FLUSH: %+v", res)
		}
		if latest, err := s.LatestInstance(ctx, inID); err != nil || !latest.CollectedAt.Equal(base.Add(51*time.Minute)) {
			t.Errorf("instance series after SCRIPT FLUSH: %+v %v", latest, err)
		}
	})
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.URL = srv.URL
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Stop()
	check := func(what string, err error) {
		t.Helper()
		// What handlers show is the *metric.Error's message: it must be
		// free of addresses; the full chain keeps the cause for logs.
		var me *metric.Error
		if !errors.Is(err, metric.ErrUnavailable) || !errors.As(err, &me) || !strings.HasPrefix(me.Msg, "redis unavailable") || strings.Contains(me.Msg, "127.0.0.1") {
			t.Errorf("%s: %v, want a client-safe ErrUnavailable", what, err)
		}
		if err != nil && !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("%s: %v, the cause is lost", what, err)
		}
	}
	_, err = s.Ingest(ctx, "down", []metric.Sample{sample(time.Now(), 1)})
	check("Ingest", err)
	_, err = s.ServerMetrics(ctx, "down", metric.Period1h, time.Now())
	check("ServerMetrics", err)
	_, err = s.Servers(ctx)
	check("Servers", err)
	_, err = s.HostKey(ctx, "down")
	check("HostKey", err)
	check("Ping", s.Ping(ctx))
	_, err = Open(ctx, cfg, nil)
	check("Open", err)
	// Back up (empty): the store works again without reopening.
	srv.Restart(t)
	if res, err := s.Ingest(ctx, "down", []metric.Sample{sample(time.Now(), 1)}); err != nil || res.Accepted != 1 {
		t.Errorf("after restart: %+v %v", res, err)
	}
}

func TestConfigParsing(t *testing.T) {
	t.Parallel()
	tiers, err := ParseTiers("30m:7d, 10s:1h,1m:6h,5m:24h")
	if err != nil || len(tiers) != 4 || tiers[0] != (Tier{10 * time.Second, time.Hour}) || tiers[3] != (Tier{30 * time.Minute, 7 * 24 * time.Hour}) {
		t.Errorf("ParseTiers: %v %v", tiers, err)
	}
	for _, bad := range []string{"", "10s", "10s:1h,10s:2h", "500ms:1h", "1h:10s", "x:1h", "10s:y"} {
		if _, err := ParseTiers(bad); err == nil {
			t.Errorf("ParseTiers(%q) accepted", bad)
		}
	}
	if ps, err := ParsePeriods("30d,90d"); err != nil || len(ps) != 2 || ps[1] != (metric.Period{Name: "90d", Window: 90 * 24 * time.Hour}) {
		t.Errorf("ParsePeriods: %v %v", ps, err)
	}
	if _, err := ParsePeriods("30x"); err == nil {
		t.Error("ParsePeriods accepted 30x")
	}
	c, err := newClient("redis://:secret@127.0.0.1:1/2")
	if err != nil {
		t.Fatal(err)
	}
	if cl, ok := c.(*redis.Client); !ok || cl.Options().Password != "secret" || cl.Options().DB != 2 {
		t.Errorf("single URL: %T", c)
	}
	c.Close()
	c, err = newClient("redis://127.0.0.1:1, redis://127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*redis.ClusterClient); !ok {
		t.Errorf("URL list: %T, want cluster client", c)
	}
	c.Close()
	// Bare host:port nodes take the first URL's scheme, credentials and
	// query; the query's timeouts and pool size reach the cluster client.
	c, err = newClient("rediss://:tok@10.0.0.1:6379/?read_timeout=2s&pool_size=7,10.0.0.2:6379, 10.0.0.3:6380")
	if err != nil {
		t.Fatal(err)
	}
	cl, ok := c.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("URL list: %T, want cluster client", c)
	}
	if o := cl.Options(); strings.Join(o.Addrs, " ") != "10.0.0.1:6379 10.0.0.2:6379 10.0.0.3:6380" || o.Password != "tok" ||
		o.TLSConfig == nil || o.ReadTimeout != 2*time.Second || o.PoolSize != 7 || o.MaxRetries != 1 || o.DialTimeout != time.Second {
		t.Errorf("cluster options: %+v", o)
	}
	c.Close()
	c, err = newClient("10.0.0.1:6379,10.0.0.2:6379")
	if cl, ok := c.(*redis.ClusterClient); err != nil || !ok || strings.Join(cl.Options().Addrs, " ") != "10.0.0.1:6379 10.0.0.2:6379" || cl.Options().TLSConfig != nil {
		t.Errorf("bare host:port list: %T %v", c, err)
	} else {
		c.Close()
	}
	if _, err := newClient("redis://:secret@a:6379/2,b:6379"); err == nil || !strings.Contains(err.Error(), "only database 0") || strings.Contains(err.Error(), "secret") {
		t.Errorf("cluster with db 2: %v", err)
	}
	if _, err := newClient("http://x"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad scheme: %v", err)
	}
	if _, err := Open(context.Background(), Config{URL: "redis://127.0.0.1:1", Prefix: "a{b"}, nil); err == nil {
		t.Error("prefix with a brace accepted")
	}
	for age, want := range map[time.Duration]string{
		30 * time.Minute:    "under 1h",
		8 * 24 * time.Hour:  "longer than the longest tier's retention 7d",
		90 * 24 * time.Hour: "longer than the longest tier's retention 7d",
	} {
		if _, err := Open(context.Background(), Config{URL: "redis://127.0.0.1:1", MaxSampleAge: age}, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("MaxSampleAge %s: %v, want %q", age, err, want)
		}
	}
	if err := CheckMaxSampleAge(time.Hour, nil); err != nil {
		t.Errorf("1h: %v", err)
	}
}

// TestInstanceIDsCannotBeSquatted: an instance id derived from a server's
// id and the instance name is that server's whoever reports it first; an
// explicit id is stored only for the server an operator bound it to; a
// refused id costs only its own readings, never the rest of the batch.
func TestInstanceIDsCannotBeSquatted(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		owned := metric.InstanceUUID("rep-1", "postgres")
		nginx := metric.InstanceUUID("web-2", "nginx")
		with := func(at time.Time, cpu float64, ins ...metric.InstanceSample) metric.Sample {
			smp := sample(at, cpu)
			smp.Instances = ins
			return smp
		}
		in := func(id, name string, cpu float64) metric.InstanceSample {
			return metric.InstanceSample{InstanceID: id, Name: name, CPUUsagePercent: cpu, MemoryUsedBytes: 1, MemoryLimitBytes: 2, MemoryUsagePercent: 50}
		}
		at := c.t.Add(-5 * time.Minute).Truncate(10 * time.Second)

		// web-2 reports rep-1's derived id first, next to its own nginx.
		res := mustIngest(t, s, "web-2", []metric.Sample{with(at, 10, in(nginx, "nginx", 1), in(owned, "postgres", 99))})
		if res.Accepted != 1 || res.InstancesRefused != 1 || !strings.Contains(res.RefusedReason, owned) || !strings.Contains(res.RefusedReason, "vitalsctl instance bind") {
			t.Fatalf("squat: %+v", res)
		}
		if strings.Contains(res.RefusedReason, "rep-1") {
			t.Errorf("the refusal names the owner: %s", res.RefusedReason)
		}
		if got, err := s.LatestInstance(ctx, nginx); err != nil || got.ServerID != "web-2" {
			t.Errorf("web-2's own instance in the same batch: %+v %v", got, err)
		}
		if pts := points(t, s, "web-2", metric.Period1h, c.t); len(pts) != 1 {
			t.Errorf("web-2's server sample: %+v", pts)
		}
		// rep-1's batches are all stored, and the instance is rep-1's.
		for i := range 3 {
			res := mustIngest(t, s, "rep-1", []metric.Sample{with(at.Add(time.Duration(i)*10*time.Second), 20, in(owned, "postgres", 7))})
			if res.Accepted != 1 || res.InstancesRefused != 0 {
				t.Fatalf("rep-1 batch %d: %+v", i, res)
			}
		}
		assertOwner := func(step, server string, cpu float64, n int) {
			t.Helper()
			if info, err := s.Instance(ctx, owned); err != nil || info.ServerID != server {
				t.Errorf("%s: Instance: %+v %v", step, info, err)
			}
			pts, err := s.InstanceMetrics(ctx, owned, metric.Period1h, c.t)
			if err != nil || len(pts) != n {
				t.Fatalf("%s: history %d points (want %d): %+v %v", step, len(pts), n, pts, err)
			}
			for _, p := range pts {
				if p.ServerID != server || p.CPUUsagePercent != cpu || p.Samples != 1 {
					t.Errorf("%s: point %+v", step, p)
				}
			}
			if l, err := s.LatestInstance(ctx, owned); err != nil || l.ServerID != server || l.CPUUsagePercent != cpu {
				t.Errorf("%s: latest %+v %v", step, l, err)
			}
		}
		assertOwner("squatted first", "rep-1", 7, 3)

		// web-2 keeps trying: only that instance is refused, every time.
		res = mustIngest(t, s, "web-2", []metric.Sample{with(at.Add(40*time.Second), 10, in(owned, "postgres", 99), in(nginx, "nginx", 1))})
		if res.Accepted != 1 || res.InstancesRefused != 1 || !strings.Contains(res.RefusedReason, "derived from another server") {
			t.Errorf("squat after the owner: %+v", res)
		}
		assertOwner("squatted again", "rep-1", 7, 3)

		// An operator binding does not beat derivation either.
		if _, err := s.Bind(ctx, "web-2", owned, "postgres"); err != nil {
			t.Fatal(err)
		}
		if res := mustIngest(t, s, "web-2", []metric.Sample{with(at.Add(50*time.Second), 10, in(owned, "postgres", 99))}); res.InstancesRefused != 1 {
			t.Errorf("bound squat: %+v", res)
		}
		mustIngest(t, s, "rep-1", []metric.Sample{with(at.Add(30*time.Second), 20, in(owned, "postgres", 7))})
		assertOwner("bound squat", "rep-1", 7, 4)
		if bs, err := s.Bindings(ctx); err != nil || len(bs) != 0 {
			t.Errorf("a binding of another server's derived id outlived its report: %+v %v", bs, err)
		}
	})
}

// TestInstanceBindings: an explicit (configured) instance id is stored only
// for the server an operator bound it to; binding moves it, unbinding
// stops it.
func TestInstanceBindings(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		const id = "0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f"
		at := c.t.Add(-5 * time.Minute).Truncate(10 * time.Second)
		send := func(server string, i int) metric.IngestResult {
			smp := sample(at.Add(time.Duration(i)*10*time.Second), 10)
			smp.Instances = []metric.InstanceSample{{InstanceID: id, Name: "db", CPUUsagePercent: float64(i), MemoryLimitBytes: 1}}
			return mustIngest(t, s, server, []metric.Sample{smp})
		}
		if res := send("db-a", 0); res.Accepted != 1 || res.InstancesRefused != 1 || !strings.Contains(res.RefusedReason, "vitalsctl instance bind") {
			t.Fatalf("unbound: %+v", res)
		}
		if _, err := s.Instance(ctx, id); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("unbound id indexed: %v", err)
		}
		if prev, err := s.Bind(ctx, "db-a", strings.ToUpper(id), "db"); err != nil || prev != "" {
			t.Fatalf("Bind: %q %v", prev, err)
		}
		if res := send("db-a", 1); res.InstancesRefused != 0 {
			t.Fatalf("bound: %+v", res)
		}
		if res := send("db-b", 2); res.InstancesRefused != 1 || !strings.Contains(res.RefusedReason, "bound to another server") {
			t.Errorf("db-b on db-a's binding: %+v", res)
		}
		if info, err := s.Instance(ctx, id); err != nil || info.ServerID != "db-a" {
			t.Errorf("Instance: %+v %v", info, err)
		}
		// The database moves to db-b: its history comes along.
		if prev, err := s.Bind(ctx, "db-b", id, "db"); err != nil || prev != "db-a" {
			t.Fatalf("rebind: %q %v", prev, err)
		}
		if res := send("db-b", 3); res.InstancesRefused != 0 {
			t.Errorf("rebound: %+v", res)
		}
		if res := send("db-a", 4); res.InstancesRefused != 1 {
			t.Errorf("old server after the move: %+v", res)
		}
		pts, err := s.InstanceMetrics(ctx, id, metric.Period1h, c.t)
		if err != nil || len(pts) != 2 || pts[0].CPUUsagePercent != 1 || pts[1].CPUUsagePercent != 3 || pts[1].ServerID != "db-b" {
			t.Errorf("history after the move: %+v %v", pts, err)
		}
		if bs, err := s.Bindings(ctx); err != nil || len(bs) != 1 || bs[0] != (Binding{InstanceID: id, ServerID: "db-b", Name: "db"}) {
			t.Errorf("Bindings: %+v %v", bs, err)
		}
		if err := s.Unbind(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.Unbind(ctx, id); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("second Unbind: %v", err)
		}
		if res := send("db-b", 5); res.InstancesRefused != 1 {
			t.Errorf("after unbind: %+v", res)
		}
		if _, err := s.Bind(ctx, "db-b", "nope", ""); !errors.Is(err, metric.ErrInvalid) {
			t.Errorf("Bind of a non-UUID: %v", err)
		}
	})
}

// TestInstanceClaimsMigrate: index entries stored when the first server to
// report an id owned it. An explicit id's claim counts as a binding to its
// server; a claim on an id derived from another server is taken back by
// that server at its first report, and what the squatter wrote under it
// never shows up as the owner's (or turns the owner's samples into
// duplicates).
func TestInstanceClaimsMigrate(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		owned := metric.InstanceUUID("rep-1", "postgres")
		const explicit = "0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f"
		at := c.t.Add(-5 * time.Minute).Truncate(10 * time.Second)
		// Claims as the code before bindings stored them (no kind).
		for id, server := range map[string]string{owned: "web-2", explicit: "web-2"} {
			if err := s.rdb.HSet(ctx, s.instancesKey(), id, `{"s":"`+server+`","n":"postgres"}`).Err(); err != nil {
				t.Fatal(err)
			}
		}
		with := func(at time.Time, cpu float64, ids ...string) metric.Sample {
			smp := sample(at, cpu)
			for _, id := range ids {
				smp.Instances = append(smp.Instances, metric.InstanceSample{InstanceID: id, Name: "postgres", CPUUsagePercent: cpu, MemoryLimitBytes: 1})
			}
			return smp
		}
		// web-2 wrote under both, as before the upgrade (the series had
		// no owner field then).
		res := mustIngest(t, s, "web-2", []metric.Sample{with(at, 99, owned, explicit), with(at.Add(10*time.Second), 99, owned, explicit)})
		if res.InstancesRefused != 0 {
			t.Fatalf("claims from before bindings: %+v", res)
		}
		if err := s.rdb.HDel(ctx, latestKey(s.instanceTag(owned)), "o").Err(); err != nil {
			t.Fatal(err)
		}
		if bs, err := s.Bindings(ctx); err != nil || len(bs) != 2 {
			t.Errorf("claims not stored as bindings: %+v %v", bs, err)
		}

		// rep-1 reports its own id, at the same second as one of web-2's.
		res = mustIngest(t, s, "rep-1", []metric.Sample{with(at.Add(10*time.Second), 5, owned)})
		if res.Accepted != 1 || res.InstancesRefused != 0 {
			t.Fatalf("owner: %+v", res)
		}
		pts, err := s.InstanceMetrics(ctx, owned, metric.Period1h, c.t)
		if err != nil || len(pts) != 1 || pts[0].CPUUsagePercent != 5 || pts[0].ServerID != "rep-1" || !pts[0].CollectedAt.Equal(at.Add(10*time.Second)) {
			t.Errorf("owner's history after the take-back: %+v %v", pts, err)
		}
		if l, err := s.LatestInstance(ctx, owned); err != nil || l.CPUUsagePercent != 5 || l.ServerID != "rep-1" {
			t.Errorf("owner's latest: %+v %v", l, err)
		}
		if info, err := s.Instance(ctx, owned); err != nil || info.ServerID != "rep-1" {
			t.Errorf("index: %+v %v", info, err)
		}
		// The explicit id stays web-2's; rep-1's id no longer is.
		res = mustIngest(t, s, "web-2", []metric.Sample{with(at.Add(20*time.Second), 99, owned, explicit)})
		if res.Accepted != 1 || res.InstancesRefused != 1 || !strings.Contains(res.RefusedReason, owned) {
			t.Errorf("web-2 after the take-back: %+v", res)
		}
		if bs, err := s.Bindings(ctx); err != nil || len(bs) != 1 || bs[0].InstanceID != explicit || bs[0].ServerID != "web-2" {
			t.Errorf("bindings after the take-back: %+v %v", bs, err)
		}
		if pts, err := s.InstanceMetrics(ctx, explicit, metric.Period1h, c.t); err != nil || len(pts) != 3 {
			t.Errorf("explicit id's history: %+v %v", pts, err)
		}
	})
}

// TestInstanceCapPerServer: a server may have at most MaxInstancesPerServer
// live instances. New ones past it are left out and counted (their claims
// taken back), the rest of the batch is stored, and an instance frees its
// place when it expires.
func TestInstanceCapPerServer(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, func(cfg *Config) { cfg.MaxInstancesPerServer = 3 })
		ctx := context.Background()
		in := func(name string) metric.InstanceSample {
			return metric.InstanceSample{InstanceID: metric.InstanceUUID("capped", name), Name: name, MemoryLimitBytes: 1}
		}
		with := func(at time.Time, names ...string) metric.Sample {
			smp := sample(at, 10)
			for _, n := range names {
				smp.Instances = append(smp.Instances, in(n))
			}
			return smp
		}
		indexed := func(name string) bool {
			ok, err := s.rdb.HExists(ctx, s.instancesKey(), in(name).InstanceID).Result()
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		at := c.t.Add(-time.Minute)
		mustIngest(t, s, "capped", []metric.Sample{with(at, "a", "b")})
		// Reporting known instances again never counts twice.
		if res := mustIngest(t, s, "capped", []metric.Sample{with(at.Add(10*time.Second), "a", "b")}); res.InstancesOverLimit != 0 {
			t.Fatalf("known instances counted: %+v", res)
		}

		// Room for one more: c (first seen first) gets it, d and e do not.
		res := mustIngest(t, s, "capped", []metric.Sample{with(at.Add(20*time.Second), "a", "c", "d"), with(at.Add(30*time.Second), "e", "b")})
		if res.Accepted != 2 || res.InstancesOverLimit != 2 {
			t.Fatalf("over the limit: %+v", res)
		}
		for name, want := range map[string]bool{"a": true, "b": true, "c": true, "d": false, "e": false} {
			if indexed(name) != want {
				t.Errorf("instance %s indexed = %v, want %v", name, !want, want)
			}
		}
		if _, err := s.LatestInstance(ctx, in("d").InstanceID); !errors.Is(err, metric.ErrNotFound) {
			t.Errorf("over-limit instance stored: %v", err)
		}
		if got, err := s.LatestInstance(ctx, in("b").InstanceID); err != nil || !got.CollectedAt.Equal(at.Add(30*time.Second)) {
			t.Errorf("known instance in the same batch: %v %v", got.CollectedAt, err)
		}
		if got, err := s.LatestServer(ctx, "capped"); err != nil || !got.CollectedAt.Equal(at.Add(30*time.Second)) {
			t.Errorf("the server series of a batch over the limit: %v %v", got.CollectedAt, err)
		}
		// Another server has its own allowance.
		if res := mustIngest(t, s, "other", []metric.Sample{with(at, "x", "y", "z")}); res.InstancesOverLimit != 0 {
			t.Errorf("other server: %+v", res)
		}

		// A week after their last sample a, b and c have expired and no
		// longer count.
		c.t = c.t.Add(7*24*time.Hour + time.Minute)
		if res := mustIngest(t, s, "capped", []metric.Sample{with(c.t.Add(-time.Second), "d", "e", "f")}); res.InstancesOverLimit != 0 {
			t.Errorf("after expiry: %+v", res)
		}
	})
}

func TestIngestPrunesIndex(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		old := metric.InstanceUUID("gone-1", "postgres")
		smp := sample(c.t.Add(-time.Minute), 10)
		smp.Instances = []metric.InstanceSample{{InstanceID: old, Name: "postgres", MemoryLimitBytes: 1}}
		mustIngest(t, s, "gone-1", []metric.Sample{smp})

		// A week later another host reports; its ingest prunes what
		// expired, without anyone calling GET /api/servers.
		c.t = c.t.Add(7*24*time.Hour + time.Minute)
		smp = sample(c.t.Add(-time.Second), 10)
		smp.Instances = []metric.InstanceSample{{InstanceID: metric.InstanceUUID("app1", "nginx"), Name: "nginx", MemoryLimitBytes: 1}}
		mustIngest(t, s, "app1", []metric.Sample{smp})
		if n, err := s.rdb.HExists(ctx, s.instancesKey(), old).Result(); err != nil || n {
			t.Errorf("expired instance still indexed: %v %v", n, err)
		}
		if err := s.rdb.ZScore(ctx, s.serversKey(), "gone-1").Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("expired server still indexed: %v", err)
		}
	})
}

// TestUnservedPeriod: an extra period no tier can serve within the point
// cap stops Open with a message naming a tier that would serve it, before
// any Redis round trip.
func TestUnservedPeriod(t *testing.T) {
	tiers, err := ParseTiers("10s:1h,1m:6h,5m:24h,30m:7d,2h:90d")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		period metric.Period
		want   string
	}{
		{metric.Period{Name: "90d", Window: 90 * 24 * time.Hour},
			"period 90d is not served by any tier: a query returns at most 400 points, so it needs a tier keeping at least 90d at a resolution of 5h24m0s or coarser; add e.g. 6h:90d to the tiers"},
		{metric.Period{Name: "1y", Window: 365 * 24 * time.Hour},
			"period 1y is not served by any tier: a query returns at most 400 points, so it needs a tier keeping at least 365d at a resolution of 21h54m0s or coarser; add e.g. 24h:365d to the tiers"},
	} {
		cfg := DefaultConfig()
		cfg.URL, cfg.Tiers, cfg.Periods = "redis://127.0.0.1:1", tiers, []metric.Period{tc.period}
		s, err := Open(context.Background(), cfg, nil)
		if err == nil {
			_ = s.Close()
			t.Fatalf("%s: Open succeeded", tc.period.Name)
		}
		if err.Error() != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.period.Name, err, tc.want)
		}
	}
}

// TestRawPointKeepsItsTime: a 10 s point holding one sample is that raw
// sample, so history gives it the sample's own collectedAt, the same id and
// time latest (and the live stream) gave it; rollups of several samples,
// and coarser tiers, give the bucket start.
func TestRawPointKeepsItsTime(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx := context.Background()
		at := c.t.Add(-10 * time.Minute).Truncate(10 * time.Second).Add(3 * time.Second)
		in := metric.InstanceSample{InstanceID: metric.InstanceUUID("raw", "db"), Name: "db", MemoryLimitBytes: 1}
		one := sample(at, 10)
		one.Instances = []metric.InstanceSample{in}
		// Two samples in the next 10 s bucket: a rollup.
		mustIngest(t, s, "raw", []metric.Sample{one, sample(at.Add(10*time.Second), 20), sample(at.Add(12*time.Second), 30)})

		latest, err := s.LatestServer(ctx, "raw")
		if err != nil {
			t.Fatal(err)
		}
		pts := points(t, s, "raw", metric.Period1h, c.t)
		if len(pts) != 2 || !pts[0].CollectedAt.Equal(at) || !pts[1].CollectedAt.Equal(at.Add(7*time.Second)) {
			t.Fatalf("1h points: %+v", pts)
		}
		if !latest.CollectedAt.Equal(at.Add(12*time.Second)) || latest.ID != pts[1].ID {
			t.Errorf("latest %s %v vs history %s", latest.ID, latest.CollectedAt, pts[1].ID)
		}
		if six := points(t, s, "raw", metric.Period6h, c.t); len(six) != 1 || !six[0].CollectedAt.Equal(at.Truncate(time.Minute)) {
			t.Errorf("6h point: %+v", six)
		}
		ins, err := s.InstanceMetrics(ctx, in.InstanceID, metric.Period1h, c.t)
		if err != nil || len(ins) != 1 || !ins[0].CollectedAt.Equal(at) {
			t.Errorf("instance 1h: %+v %v", ins, err)
		}
	})
}

// TestLatestFollowsClockStepBack: one sample dated minutes ahead (inside
// the skew window; a host whose clock NTP then steps back) does not freeze
// the latest: each later sample replaces it and is published, as long as
// the current latest is dated after ingest's clock. A replay of old
// spooled samples after an outage still never replaces a current latest.
func TestLatestFollowsClockStepBack(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		inID := metric.InstanceUUID("skew", "db")
		sub := s.Client().Subscribe(ctx, s.ServerChannel("skew"), s.InstanceChannel(inID))
		defer sub.Close()
		for range 2 {
			if _, err := sub.Receive(ctx); err != nil {
				t.Fatal(err)
			}
		}
		mk := func(at time.Time, cpu float64) metric.Sample {
			smp := sample(at, cpu)
			smp.Instances = []metric.InstanceSample{{InstanceID: inID, Name: "db", CPUUsagePercent: cpu, MemoryLimitBytes: 1}}
			return smp
		}
		// receive waits for the next server and instance messages.
		receive := func(step string) (srv, ins metric.ServerMetric) {
			t.Helper()
			for got := 0; got < 2; got++ {
				msg, err := sub.ReceiveMessage(ctx)
				if err != nil {
					t.Fatalf("%s: receive: %v", step, err)
				}
				var m metric.ServerMetric
				if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil {
					t.Fatal(err)
				}
				if msg.Channel == s.ServerChannel("skew") {
					srv = m
				} else {
					ins = m
				}
			}
			return srv, ins
		}
		check := func(step string, want time.Time) {
			t.Helper()
			srv, ins := receive(step)
			if !srv.CollectedAt.Equal(want) || !ins.CollectedAt.Equal(want) {
				t.Errorf("%s: published server %v, instance %v; want %v", step, srv.CollectedAt, ins.CollectedAt, want)
			}
			if l, err := s.LatestServer(ctx, "skew"); err != nil || !l.CollectedAt.Equal(want) {
				t.Errorf("%s: latest server %v %v; want %v", step, l.CollectedAt, err, want)
			}
			if snap, err := s.Snapshot(ctx, "skew"); err != nil || !snap.CollectedAt.Equal(want) {
				t.Errorf("%s: snapshot %v %v; want %v", step, snap.CollectedAt, err, want)
			}
			if l, err := s.LatestInstance(ctx, inID); err != nil || !l.CollectedAt.Equal(want) {
				t.Errorf("%s: latest instance %v %v; want %v", step, l.CollectedAt, err, want)
			}
		}
		start := c.t
		ahead := start.Add(240 * time.Second)
		mustIngest(t, s, "skew", []metric.Sample{mk(ahead, 50)})
		check("sample ahead", ahead)
		if servers, err := s.Servers(ctx); err != nil || len(servers) != 1 || servers[0].LastSeenAt.After(c.t) {
			t.Errorf("lastSeenAt in the future: %+v %v", servers, err)
		}
		// The host's clock stepped back: its next samples are real time.
		for i := 1; i <= 10; i++ {
			c.t = start.Add(time.Duration(i) * 10 * time.Second)
			at := c.t.Add(-time.Second)
			mustIngest(t, s, "skew", []metric.Sample{mk(at, float64(i))})
			check(fmt.Sprintf("sample %d after the step back", i), at)
		}
		if servers, err := s.Servers(ctx); err != nil || len(servers) != 1 || !servers[0].LastSeenAt.Equal(c.t.Add(-time.Second)) {
			t.Errorf("lastSeenAt after the step back: %+v %v", servers, err)
		}
		current := c.t.Add(-time.Second)

		// After an outage the spool replays old samples: stored, but the
		// latest stays, and nothing is published for them.
		var replay []metric.Sample
		for i := range 5 {
			replay = append(replay, mk(start.Add(-30*time.Minute+time.Duration(i)*10*time.Second), 90))
		}
		if res := mustIngest(t, s, "skew", replay); res.Accepted != 5 {
			t.Fatalf("replay: %+v", res)
		}
		if l, err := s.LatestServer(ctx, "skew"); err != nil || !l.CollectedAt.Equal(current) {
			t.Errorf("replay replaced the latest: %v %v", l.CollectedAt, err)
		}
		if l, err := s.LatestInstance(ctx, inID); err != nil || !l.CollectedAt.Equal(current) {
			t.Errorf("replay replaced the instance latest: %v %v", l.CollectedAt, err)
		}
		// A newer sample still is the next thing published.
		c.t = c.t.Add(10 * time.Second)
		next := c.t.Add(-time.Second)
		mustIngest(t, s, "skew", []metric.Sample{mk(next, 1)})
		check("after the replay", next)
	})
}

// TestRawPointPrecisionAgrees: a sample's raw point reads the same on
// /latest, on the live stream and as a single-sample history point: gauges
// are rounded to the two decimals the series stores, everywhere.
func TestRawPointPrecisionAgrees(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		s, c := openOn(t, b, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		inID := metric.InstanceUUID("prec", "db")
		sub := s.Client().Subscribe(ctx, s.ServerChannel("prec"), s.InstanceChannel(inID))
		defer sub.Close()
		for range 2 {
			if _, err := sub.Receive(ctx); err != nil {
				t.Fatal(err)
			}
		}
		smp := sample(c.t.Add(-time.Minute).Truncate(10*time.Second).Add(3*time.Second), 12.3456)
		smp.CPULoad5m, smp.CPULoad15m, smp.RAMUsagePercent, smp.DiskUsagePercent = 1.23456, 0.005, 33.3333, 66.6666
		smp.NetworkRxBytesPerSec, smp.NetworkTxBytesPerSec = f64(1234.5678), f64(0.0049)
		smp.Instances = []metric.InstanceSample{{InstanceID: inID, Name: "db", CPUUsagePercent: 1.23456, MemoryUsedBytes: 3, MemoryLimitBytes: 9, MemoryUsagePercent: 33.3333, DiskUsedBytes: u64(5)}}
		mustIngest(t, s, "prec", []metric.Sample{smp})

		var liveServer metric.ServerMetric
		var liveInstance metric.InstanceMetric
		for range 2 {
			msg, err := sub.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			dst := any(&liveInstance)
			if msg.Channel == s.ServerChannel("prec") {
				dst = &liveServer
			}
			if err := json.Unmarshal([]byte(msg.Payload), dst); err != nil {
				t.Fatal(err)
			}
		}
		latest, err := s.LatestServer(ctx, "prec")
		if err != nil {
			t.Fatal(err)
		}
		hist := points(t, s, "prec", metric.Period1h, c.t)
		if len(hist) != 1 {
			t.Fatalf("history: %+v", hist)
		}
		if latest != hist[0] || liveServer != hist[0] {
			t.Errorf("server raw point differs:\nlatest  %+v\nlive    %+v\nhistory %+v", latest, liveServer, hist[0])
		}
		if latest.CPUUsagePercent != 12.35 || latest.CPULoad1m != 1.23 || latest.CPULoad5m != 1.23 || latest.RAMUsagePercent != 33.33 ||
			latest.NetworkRxBytesPerSec != 1234.57 || latest.NetworkTxBytesPerSec != 0 || latest.CPULoad15m != 0.01 {
			t.Errorf("not two decimals: %+v", latest)
		}
		if snap, err := s.Snapshot(ctx, "prec"); err != nil || snap.CPUUsagePercent != 12.35 || *snap.NetworkRxBytesPerSec != 1234.57 {
			t.Errorf("snapshot: %+v %v", snap, err)
		}

		li, err := s.LatestInstance(ctx, inID)
		if err != nil {
			t.Fatal(err)
		}
		ih, err := s.InstanceMetrics(ctx, inID, metric.Period1h, c.t)
		if err != nil || len(ih) != 1 {
			t.Fatalf("instance history: %+v %v", ih, err)
		}
		if !reflect.DeepEqual(li, ih[0]) || !reflect.DeepEqual(liveInstance, ih[0]) || li.CPUUsagePercent != 1.23 || li.MemoryUsagePercent != 33.33 {
			t.Errorf("instance raw point differs:\nlatest  %+v\nlive    %+v\nhistory %+v", li, liveInstance, ih[0])
		}
	})
}
