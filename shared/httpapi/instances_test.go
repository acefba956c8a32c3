package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/vitals-dev/vitals/shared/metric"
)

// TestIngestSquattedInstanceRefusedAlone: another enrolled host reporting
// web-1's derived instance id first costs web-1 nothing (every batch 202,
// REST reads web-1's data) and costs itself only that instance: its 202
// counts it in instancesRefused with a reason, the rest is stored.
func TestIngestSquattedInstanceRefusedAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	squatterKey, err := e.store.AddHost(context.Background(), "web-2")
	if err != nil {
		t.Fatal(err)
	}
	owned := metric.InstanceUUID("web-1", "postgres")
	withInstance := func(cpu float64) func(int, map[string]any) {
		return func(_ int, s map[string]any) {
			ins := s["instances"].([]map[string]any)
			ins[0]["instanceId"], ins[0]["name"], ins[0]["cpuUsagePercent"] = owned, "postgres", cpu
			// the squatter's own instance, next to the stolen one
			s["instances"] = append(ins, map[string]any{
				"instanceId": metric.InstanceUUID("web-2", "nginx"), "name": "nginx", "cpuUsagePercent": 1,
				"memoryUsedBytes": 1, "memoryLimitBytes": 2, "memoryUsagePercent": 50, "diskReadBytes": 0, "diskWriteBytes": 0,
			})
		}
	}
	res := do(t, e.ingest, signed("web-2", squatterKey, gz(t, batch(t, 3, withInstance(99))), true))
	res.want(t, http.StatusAccepted, "")
	reason, _ := res.Body["refusedReason"].(string)
	if res.Body["accepted"] != 3.0 || res.Body["instancesRefused"] != 1.0 || !strings.Contains(reason, owned) {
		t.Fatalf("squatter's batch: %s", res.Raw)
	}
	if r := do(t, e.query, get("/api/instances/"+metric.InstanceUUID("web-2", "nginx")+"/monitoring/metrics/latest", token(t, "web-2"))); r.Status != http.StatusOK {
		t.Errorf("the squatter's own instance: %s", r.Raw)
	}

	ownerBatch := func(_ int, s map[string]any) {
		ins := s["instances"].([]map[string]any)
		ins[0]["instanceId"], ins[0]["name"], ins[0]["cpuUsagePercent"] = owned, "postgres", 7.0
		s["cpuUsagePercent"] = 33.0
	}
	for range 3 {
		res := do(t, e.ingest, signed("web-1", e.key, gz(t, batch(t, 2, ownerBatch)), true))
		res.want(t, http.StatusAccepted, "")
		if _, refused := res.Body["instancesRefused"]; refused {
			t.Fatalf("owner's batch: %s", res.Raw)
		}
	}
	latest := do(t, e.query, get("/api/instances/"+owned+"/monitoring/metrics/latest", token(t, "web-1")))
	latest.want(t, http.StatusOK, "")
	if latest.Body["serverId"] != "web-1" || latest.Body["cpuUsagePercent"] != 7.0 {
		t.Errorf("owner's instance: %s", latest.Raw)
	}
	if r := do(t, e.query, get("/api/instances/"+owned+"/monitoring/metrics/latest", token(t, "web-2"))); r.Status != http.StatusForbidden {
		t.Errorf("the squatter's token reads the owner's instance: %d %s", r.Status, r.Raw)
	}
}
