package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// TestServersInterval: GET /api/servers's list carries each server's
// announced reporting interval (what the evaluator judges it by), or the
// 10 s default for a server that never announced one.
func TestServersInterval(t *testing.T) {
	suite(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s, c := openOn(t, b, nil)
		mustIngest(t, s, "cron-1", []metric.Sample{sample(c.Now().Add(-time.Minute), 5)})
		mustIngest(t, s, "old-1", []metric.Sample{sample(c.Now().Add(-time.Minute), 5)})
		if err := s.RecordInterval(ctx, "cron-1", time.Minute); err != nil {
			t.Fatal(err)
		}
		servers, err := s.Servers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, sv := range servers {
			got[sv.ID] = sv.Interval
		}
		if got["cron-1"] != 60 || got["old-1"] != metric.DefaultIntervalSeconds {
			t.Fatalf("intervals %v", got)
		}
	})
}
