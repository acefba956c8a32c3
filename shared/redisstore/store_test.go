package redisstore

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// base is a fixed instant on a 30-minute boundary, so bucket math in the
// tests is easy to read.
var base = time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)

// clock is an injectable time source.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func openTest(t *testing.T, mod func(*Config)) (*Store, *clock) {
	t.Helper()
	r := redistest.New(t)
	c := &clock{t: base.Add(time.Hour)}
	cfg := DefaultConfig()
	cfg.URL = r.URL
	cfg.Prefix = r.Prefix
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

func sample(at time.Time, cpu float64) metric.Sample {
	return metric.Sample{
		CollectedAt:     at,
		CPUUsagePercent: cpu, CPULoad1m: cpu / 10, CPULoad5m: 1, CPULoad15m: 1,
		RAMTotalBytes: 8 << 30, RAMUsedBytes: 4 << 30, RAMAvailableBytes: 4 << 30, RAMUsagePercent: 50,
		DiskTotalBytes: 100 << 30, DiskUsedBytes: 40 << 30, DiskAvailableBytes: 60 << 30, DiskUsagePercent: 40,
		NetworkRxBytes: uint64(at.Unix()), NetworkTxBytes: 2 * uint64(at.Unix()), UptimeSeconds: 1000,
	}
}

func TestSmoke(t *testing.T) {
	t.Parallel()
	s, _ := openTest(t, nil)
	ctx := context.Background()
	var batch []metric.Sample
	for i := range 6 {
		batch = append(batch, sample(base.Add(50*time.Minute+time.Duration(i)*time.Second), float64(10*i)))
	}
	res, err := s.Ingest(ctx, "web1", batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 6 {
		t.Fatalf("res %+v", res)
	}
	pts, err := s.ServerMetrics(ctx, "web1", metric.Period1h, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 1 || pts[0].Samples != 6 || pts[0].CPUUsagePercent != 25 || pts[0].CPUUsagePercentMax != 50 {
		t.Fatalf("pts %+v", pts)
	}
}
