package redisstore

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redistest"
)

// realistic returns a sample with the digit counts of a real machine
// (two-decimal gauges, byte values that vary, growing counters), so member
// sizes, and so memory figures, are representative.
func realistic(rng *rand.Rand, at time.Time, i int) metric.Sample {
	cpu := math.Round(rng.Float64()*10000) / 100
	used := uint64(3<<30 + rng.IntN(2<<30))
	swapUsed := uint64(100<<20 + rng.IntN(50<<20))
	rx, tx := math.Round(rng.Float64()*5e6)/100, math.Round(rng.Float64()*1e6)/100
	return metric.Sample{
		CollectedAt:     at,
		CPUUsagePercent: cpu, CPULoad1m: cpu / 25, CPULoad5m: cpu / 30, CPULoad15m: cpu / 35,
		RAMTotalBytes: 16 << 30, RAMUsedBytes: used, RAMAvailableBytes: 16<<30 - used, RAMUsagePercent: math.Round(float64(used)/float64(16<<30)*10000) / 100,
		DiskTotalBytes: 500 << 30, DiskUsedBytes: 200<<30 + uint64(i)*4096, DiskAvailableBytes: 300<<30 - uint64(i)*4096, DiskUsagePercent: 40.01,
		NetworkRxBytes: 1e12 + uint64(i)*250000, NetworkTxBytes: 3e11 + uint64(i)*50000, UptimeSeconds: 1e6 + uint64(i)*10,
		SwapTotalBytes: u64(4 << 30), SwapUsedBytes: &swapUsed,
		NetworkRxBytesPerSec: &rx, NetworkTxBytesPerSec: &tx,
	}
}

// seedWeek stores 7 days of 10 s history for serverID, as if a reporter had
// sent it live, and returns the store with its clock at the end of the week.
func seedWeek(b *testing.B, serverID string) (*Store, time.Time) {
	b.Helper()
	r := redistest.New(b)
	end := time.Now().Truncate(time.Hour)
	cfg := DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	var now atomic.Int64
	cfg.Now = func() time.Time { return time.Unix(now.Load(), 0) }
	s, err := Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	start := end.Add(-7 * 24 * time.Hour)
	n := int(7 * 24 * time.Hour / (10 * time.Second))
	batch := make([]metric.Sample, 0, 360)
	for i := range n {
		at := start.Add(time.Duration(i+1) * 10 * time.Second)
		batch = append(batch, realistic(rng, at, i))
		if len(batch) == cap(batch) || i == n-1 {
			// The clock follows the data, so retention trims exactly as
			// it would have live.
			now.Store(at.Unix())
			if _, err := s.Ingest(context.Background(), serverID, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return s, end
}

// BenchmarkQuery7d: the 7d query over a full week of 10 s history.
// Reports p50/p99 latency and the members read per query.
func BenchmarkQuery7d(b *testing.B) {
	s, end := seedWeek(b, "bench")
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	var points int
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		pts, err := s.ServerMetrics(ctx, "bench", metric.Period7d, end)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		points = len(pts)
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(points), "members/query")
}

// BenchmarkMemoryPerServer: MEMORY USAGE summed over one server series'
// keys after a full week of 10 s history (every tier at full retention).
func BenchmarkMemoryPerServer(b *testing.B) {
	s, _ := seedWeek(b, "mem")
	ctx := context.Background()
	keys, err := s.Client().Keys(ctx, s.serverTag("mem")+"*").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total, tiers, seen, latest, members int64
	for range b.N {
		total, tiers, seen, latest, members = 0, 0, 0, 0, 0
		for _, k := range keys {
			n, err := s.Client().MemoryUsage(ctx, k, 0).Result()
			if err != nil {
				b.Fatal(err)
			}
			total += n
			switch {
			case strings.Contains(k, ":seen:"):
				seen += n
			case strings.HasSuffix(k, ":latest"):
				latest += n
			default:
				tiers += n
				members += s.Client().ZCard(ctx, k).Val()
				if m := s.Client().ZRange(ctx, k, -1, -1).Val(); len(m) > 0 {
					b.Logf("%s newest member (%d B): %s", k, len(m[0]), m[0])
				}
			}
		}
	}
	b.ReportMetric(float64(total)/1024, "KiB/server")
	b.ReportMetric(float64(tiers)/1024, "KiB-tiers")
	b.ReportMetric(float64(seen)/1024, "KiB-seen")
	b.ReportMetric(float64(latest)/1024, "KiB-latest")
	b.ReportMetric(float64(members), "members")
	if members > 0 {
		b.ReportMetric(float64(tiers)/float64(members), "B/member")
	}
}

// BenchmarkStoreIngest: Store.Ingest into a local Redis, batches of 1 and
// 50 fresh samples (no instances, and with 3 instances). The HTTP ingest
// benchmark uses it as its ceiling.
func BenchmarkStoreIngest(b *testing.B) {
	for _, tc := range []struct {
		name      string
		batch     int
		instances int
	}{{"batch=1", 1, 0}, {"batch=50", 50, 0}, {"batch=50/instances=3", 50, 3}} {
		b.Run(tc.name, func(b *testing.B) {
			r := redistest.New(b)
			var now atomic.Int64
			cfg := DefaultConfig()
			cfg.URL, cfg.Prefix = r.URL, r.Prefix
			cfg.Now = func() time.Time { return time.Unix(now.Load(), 0) }
			s, err := Open(context.Background(), cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rng := rand.New(rand.NewPCG(3, 4))
			t := time.Now().Truncate(time.Second)
			i := 0
			batch := make([]metric.Sample, tc.batch)
			b.ResetTimer()
			for range b.N {
				for j := range batch {
					i++
					t = t.Add(time.Second)
					batch[j] = realistic(rng, t, i)
					for k := range tc.instances {
						name := []string{"db", "web", "cache"}[k]
						batch[j].Instances = append(batch[j].Instances, metric.InstanceSample{
							InstanceID: metric.InstanceUUID("ingest", name), Name: name,
							CPUUsagePercent: 12.5, MemoryUsedBytes: uint64(100<<20 + i), MemoryLimitBytes: 1 << 30, MemoryUsagePercent: 9.77,
							DiskReadBytes: uint64(i) * 1000, DiskWriteBytes: uint64(i) * 3000,
						})
					}
				}
				now.Store(t.Unix())
				res, err := s.Ingest(context.Background(), "ingest", batch)
				if err != nil || res.Accepted != tc.batch {
					b.Fatalf("%+v %v", res, err)
				}
			}
			b.ReportMetric(float64(b.N*tc.batch)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
