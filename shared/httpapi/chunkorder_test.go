package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// TestIngestChunksInTimeOrder: a batch big enough to be stored in several
// chunks, not in time order, with its newest sample a few minutes ahead
// (inside the skew window) at the front: /latest is that newest sample, as
// for the same batch stored in one call. Chunked in body order, the later
// chunk's older samples replaced it (a latest dated ahead yields to any
// later one).
func TestIngestChunksInTimeOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ahead := time.Now().Add(3 * time.Minute).UTC().Truncate(time.Second)
	body := batch(t, 1000, func(i int, s map[string]any) {
		ins := s["instances"].([]map[string]any)
		for j := range 5 { // 6 readings a sample: more than one chunk
			name := fmt.Sprintf("svc-%d", j)
			ins = append(ins, map[string]any{
				"instanceId": metric.InstanceUUID("web-1", name), "name": name, "cpuUsagePercent": 1,
				"memoryUsedBytes": 1, "memoryLimitBytes": 2, "memoryUsagePercent": 50, "diskReadBytes": 0, "diskWriteBytes": 0,
			})
		}
		s["instances"] = ins
		if i == 0 {
			s["collectedAt"] = ahead.Format(time.RFC3339)
		}
	})
	res := do(t, e.ingest, signed("web-1", e.key, gz(t, body), true))
	res.want(t, http.StatusAccepted, "")
	if res.Body["accepted"] != 1000.0 {
		t.Fatalf("ingest: %s", res.Raw)
	}
	latest := do(t, e.query, get("/api/servers/web-1/metrics/latest", token(t, "web-1")))
	latest.want(t, http.StatusOK, "")
	got, _ := time.Parse(time.RFC3339, fmt.Sprint(latest.Body["collectedAt"]))
	if !got.Equal(ahead) {
		t.Errorf("latest collectedAt %v, want the newest sample's %v", got, ahead)
	}
}
