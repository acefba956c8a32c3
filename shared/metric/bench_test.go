package metric_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// BenchmarkDecodeBatch: parse and validate a reporter's batch of 50
// samples, each with 4 instances and 2 CPUs of detail (66 KiB of JSON),
// the decoder's share of BenchmarkIngest's http path.
func BenchmarkDecodeBatch(b *testing.B) {
	samples := make([]any, 50)
	for i := range samples {
		s := sampleJSON()
		s["collectedAt"] = testNow.Add(-time.Duration(i) * 10 * time.Second).Format(time.RFC3339)
		s["cpuUsagePercent"] = float64(i%100) * 0.7
		s["cpus"] = []any{map[string]any{"name": "cpu0", "model": "x", "usage": 12.5}, map[string]any{"name": "cpu1", "model": "x", "usage": 3}}
		var ins []any
		for j := range 4 {
			ins = append(ins, instanceJSON(metric.InstanceUUID(testServer, fmt.Sprint("svc", j)), fmt.Sprint("svc", j)))
		}
		s["instances"] = ins
		samples[i] = s
	}
	body, err := json.Marshal(map[string]any{"serverId": testServer, "samples": samples})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := metric.DecodeBatch(body, testServer, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
