package redisstore

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
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

// benchInstances are the workloads BenchmarkMemoryPerServer reports with
// each sample.
var benchInstances = []string{"postgres", "nginx"}

// benchInstance is a realistic reading of the named instance: two-decimal
// gauges, memory that varies, growing I/O counters.
func benchInstance(rng *rand.Rand, serverID, name string, i int) metric.InstanceSample {
	used := uint64(200<<20 + rng.IntN(300<<20))
	return metric.InstanceSample{
		InstanceID: metric.InstanceUUID(serverID, name), Name: name,
		CPUUsagePercent: math.Round(rng.Float64()*2500) / 100, MemoryUsedBytes: used, MemoryLimitBytes: 2 << 30,
		MemoryUsagePercent: math.Round(float64(used)/float64(2<<30)*10000) / 100,
		DiskReadBytes:      5e9 + uint64(i)*40000, DiskWriteBytes: 2e10 + uint64(i)*120000,
	}
}

// seedWeek stores 7 days of 10 s history for serverID (each sample with a
// reading of each named instance), as if a reporter had sent it live, and
// returns the store with its clock at the end of the week.
func seedWeek(b *testing.B, serverID string, instances ...string) (*Store, time.Time) {
	b.Helper()
	return seed(b, DefaultTiers, 7*24*time.Hour, serverID, instances...)
}

// seed is seedWeek with other tiers and another span of history.
func seed(b *testing.B, tiers []Tier, span time.Duration, serverID string, instances ...string) (*Store, time.Time) {
	b.Helper()
	r := redistest.New(b)
	end := time.Now().Truncate(time.Hour)
	cfg := DefaultConfig()
	cfg.URL, cfg.Prefix, cfg.Tiers = r.URL, r.Prefix, tiers
	var now atomic.Int64
	cfg.Now = func() time.Time { return time.Unix(now.Load(), 0) }
	s, err := Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	rng := rand.New(rand.NewPCG(1, 2))
	start := end.Add(-span)
	n := int(span / (10 * time.Second))
	batch := make([]metric.Sample, 0, 360)
	for i := range n {
		at := start.Add(time.Duration(i+1) * 10 * time.Second)
		smp := realistic(rng, at, i)
		for _, name := range instances {
			smp.Instances = append(smp.Instances, benchInstance(rng, serverID, name, i))
		}
		batch = append(batch, smp)
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
// keys after a full week of 10 s history (every tier at full retention),
// and, separately, over each of its two instances' series.
func BenchmarkMemoryPerServer(b *testing.B) {
	s, _ := seedWeek(b, "mem", benchInstances...)
	ctx := context.Background()
	var server, inst seriesMemory
	for range b.N {
		server = s.seriesMemory(b, s.serverTag("mem"))
		inst = seriesMemory{}
		for _, name := range benchInstances {
			m := s.seriesMemory(b, s.instanceTag(metric.InstanceUUID("mem", name)))
			inst.total += m.total
			inst.tiers += m.tiers
			inst.seen += m.seen
			inst.latest += m.latest
			inst.members += m.members
		}
	}
	// The global keys (server index, instance index) grow by one entry
	// per server/instance; shown for completeness.
	var global int64
	for _, k := range []string{s.serversKey(), s.instancesKey(), s.instancesSeenKey()} {
		global += s.Client().MemoryUsage(ctx, k, 0).Val()
	}
	b.ReportMetric(float64(server.total)/1024, "KiB/server")
	b.ReportMetric(float64(server.tiers)/1024, "KiB-tiers")
	b.ReportMetric(float64(server.seen)/1024, "KiB-seen")
	b.ReportMetric(float64(server.latest)/1024, "KiB-latest")
	b.ReportMetric(float64(server.members), "members")
	if server.members > 0 {
		b.ReportMetric(float64(server.tiers)/float64(server.members), "B/member")
	}
	perInstance := func(v int64) float64 { return float64(v) / 1024 / float64(len(benchInstances)) }
	b.ReportMetric(perInstance(inst.total), "KiB/instance")
	b.ReportMetric(perInstance(inst.tiers), "KiB-instance-tiers")
	b.ReportMetric(perInstance(inst.seen), "KiB-instance-seen")
	b.ReportMetric(perInstance(inst.latest), "KiB-instance-latest")
	b.ReportMetric(float64(global)/1024, "KiB-index")
}

// BenchmarkMemoryLongTier: one server with a 6h:90d tier added and 90
// days of 10 s history: what the longer tier costs, and that the
// idempotency bitmaps stay at the sample-age horizon (8 days), not 91.
func BenchmarkMemoryLongTier(b *testing.B) {
	long := append(slices.Clone(DefaultTiers), Tier{6 * time.Hour, 90 * 24 * time.Hour})
	s, end := seed(b, long, 90*24*time.Hour, "mem90")
	ctx := context.Background()
	// The script sets each bitmap to expire at its day's end plus the
	// horizon on the caller's clock, but Redis counts TTLs in real time,
	// and the seeding clock ran 90 days in seconds: drop the bitmaps whose
	// expiry has passed on that clock, as Redis would have by now.
	tag := s.serverTag("mem90")
	seen, _ := s.Client().Keys(ctx, tag+"seen:*").Result()
	for _, k := range seen {
		day, _ := strconv.ParseInt(strings.TrimPrefix(k, tag+"seen:"), 10, 64)
		if time.Unix((day+1)*86400, 0).Add(s.horizon).Before(end) {
			s.Client().Del(ctx, k)
		}
	}
	var m seriesMemory
	var longTier int64
	var bitmaps int
	for range b.N {
		m = s.seriesMemory(b, tag)
		longTier = s.Client().MemoryUsage(ctx, tierKey(tag, long[len(long)-1]), 0).Val()
		keys, _ := s.Client().Keys(ctx, tag+"seen:*").Result()
		bitmaps = len(keys)
	}
	b.ReportMetric(float64(m.total)/1024, "KiB/server")
	b.ReportMetric(float64(longTier)/1024, "KiB-6h-tier")
	b.ReportMetric(float64(m.seen)/1024, "KiB-seen")
	b.ReportMetric(float64(bitmaps), "bitmaps")
}

// seriesMemory is MEMORY USAGE of one series' keys, by kind.
type seriesMemory struct{ total, tiers, seen, latest, members int64 }

func (s *Store) seriesMemory(b *testing.B, tag string) seriesMemory {
	b.Helper()
	ctx := context.Background()
	keys, err := s.Client().Keys(ctx, tag+"*").Result()
	if err != nil || len(keys) == 0 {
		b.Fatalf("keys of %s: %v %v", tag, keys, err)
	}
	var m seriesMemory
	for _, k := range keys {
		n, err := s.Client().MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			b.Fatal(err)
		}
		m.total += n
		switch {
		case strings.Contains(k, ":seen:"):
			m.seen += n
		case strings.HasSuffix(k, ":latest"):
			m.latest += n
		default:
			m.tiers += n
			m.members += s.Client().ZCard(ctx, k).Val()
			if last := s.Client().ZRange(ctx, k, -1, -1).Val(); len(last) > 0 {
				b.Logf("%s newest member (%d B): %s", k, len(last[0]), last[0])
			}
		}
	}
	return m
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
