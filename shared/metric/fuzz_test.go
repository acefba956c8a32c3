package metric_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// FuzzDecodeBatch throws arbitrary bodies at the ingest decoder. Seeds live
// in testdata/fuzz/FuzzDecodeBatch (valid batches and each kind of bad one).
// Invariant: DecodeBatch never panics, and either returns an ErrInvalid
// *metric.Error naming where the problem is and no batch, or a batch that is
// valid in every respect and survives a JSON round trip unchanged, which is
// exactly what the store and the API will do with it.
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"samples":[{"collectedAt":"2024-05-01T12:00:00Z","cpuUsagePercent":1,"cpuLoad1m":0,"cpuLoad5m":0,"cpuLoad15m":0,"ramTotalBytes":1,"ramUsedBytes":1,"ramAvailableBytes":0,"ramUsagePercent":100,"diskTotalBytes":1,"diskUsedBytes":0,"diskAvailableBytes":1,"diskUsagePercent":0,"networkRxBytes":0,"networkTxBytes":0,"uptimeSeconds":0}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"samples":[{"collectedAt":"2024-05-01T12:00:00Z","collectedAt":"2024-05-01T12:00:01Z"}]}`))
	f.Add([]byte(`{"samples":[{"CollectedAt":"2024-05-01T12:00:00Z"}],"Samples":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := metric.DecodeBatch(body, testServer, testNow)
		if err == nil {
			// No parser differential: encoding/json (v1, which folds case,
			// keeps the last duplicate and replaces invalid UTF-8) reads
			// an accepted body as the same samples.
			var v1 metric.Batch
			if err := json.Unmarshal(body, &v1); err != nil {
				t.Fatalf("accepted, but encoding/json refuses it: %v", err)
			}
			if len(v1.Samples) != len(b.Samples) {
				t.Fatalf("accepted %d samples, encoding/json reads %d", len(b.Samples), len(v1.Samples))
			}
			for i, s := range v1.Samples {
				got := b.Samples[i]
				if !s.CollectedAt.Truncate(time.Second).Equal(got.CollectedAt) || s.CPUUsagePercent != got.CPUUsagePercent ||
					s.RAMTotalBytes != got.RAMTotalBytes || s.UptimeSeconds != got.UptimeSeconds || len(s.Instances) != len(got.Instances) {
					t.Fatalf("samples[%d]: encoding/json reads %+v, accepted %+v", i, s, got)
				}
				for j, in := range s.Instances {
					if in.Name != got.Instances[j].Name || in.MemoryUsedBytes != got.Instances[j].MemoryUsedBytes {
						t.Fatalf("samples[%d].instances[%d]: encoding/json reads %+v, accepted %+v", i, j, in, got.Instances[j])
					}
				}
			}
		}
		if err != nil {
			var me *metric.Error
			if !errors.As(err, &me) || !errors.Is(err, metric.ErrInvalid) {
				t.Fatalf("error %T %q is not an ErrInvalid *metric.Error", err, err)
			}
			if !hasFieldPrefix(err.Error()) {
				t.Fatalf("error %q does not start by naming a field", err)
			}
			if b.Samples != nil || b.ServerID != "" {
				t.Fatalf("error %q came with a batch", err)
			}
			return
		}
		checkBatch(t, b)
		// What the store keeps, re-sent, decodes to the same thing.
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal a decoded batch: %v", err)
		}
		b2, err := metric.DecodeBatch(enc, testServer, testNow)
		if err != nil {
			t.Fatalf("a decoded batch fails re-validation: %v\n%s", err, enc)
		}
		enc2, _ := json.Marshal(b2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the batch\n first: %s\nsecond: %s", enc, enc2)
		}
	})
}

// hasFieldPrefix: every message starts with the body, the batch's serverId,
// or a samples path ("samples[3].cpus[0].usage: …", or from the JSON decoder,
// which knows no indices, "samples.cpus.usage: …").
func hasFieldPrefix(msg string) bool {
	for _, p := range []string{"body: ", "serverId: ", "samples: ", "samples[", "samples."} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// checkBatch asserts directly what DecodeBatch promises about a good batch.
func checkBatch(t *testing.T, b metric.Batch) {
	t.Helper()
	if b.ServerID != testServer {
		t.Fatalf("ServerID = %q", b.ServerID)
	}
	if n := len(b.Samples); n == 0 || n > metric.MaxSamplesPerBatch {
		t.Fatalf("%d samples", n)
	}
	finite := func(what string, v float64, lo, hi float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < lo || v > hi {
			t.Fatalf("%s = %v outside [%v, %v]", what, v, lo, hi)
		}
	}
	for _, s := range b.Samples {
		at := s.CollectedAt
		if at.Location() != time.UTC || at.Nanosecond() != 0 || at.Year() < 2000 || at.After(testNow.Add(metric.MaxClockSkew)) {
			t.Fatalf("collectedAt %v not a UTC second in range", at)
		}
		finite("cpuUsagePercent", s.CPUUsagePercent, 0, 100)
		finite("ramUsagePercent", s.RAMUsagePercent, 0, 100)
		finite("diskUsagePercent", s.DiskUsagePercent, 0, 100)
		finite("cpuLoad1m", s.CPULoad1m, 0, math.MaxFloat64)
		finite("cpuLoad5m", s.CPULoad5m, 0, math.MaxFloat64)
		finite("cpuLoad15m", s.CPULoad15m, 0, math.MaxFloat64)
		for _, p := range []*float64{s.NetworkRxBytesPerSec, s.NetworkTxBytesPerSec} {
			if p != nil {
				finite("rate", *p, 0, math.MaxFloat64)
			}
		}
		if len(s.CPUs) > metric.MaxCPUsPerSample || len(s.Disks) > metric.MaxDisksPerSample || len(s.Instances) > metric.MaxInstancesPerSample {
			t.Fatalf("detail over the limits: %d cpus, %d disks, %d instances", len(s.CPUs), len(s.Disks), len(s.Instances))
		}
		for _, c := range s.CPUs {
			finite("cpu usage", c.Usage, 0, 100)
		}
		seen := map[string]bool{}
		for _, in := range s.Instances {
			if id, err := metric.ParseUUID(in.InstanceID); err != nil || id != in.InstanceID {
				t.Fatalf("instance id %q not a canonical lowercase UUID", in.InstanceID)
			}
			if seen[in.InstanceID] {
				t.Fatalf("instance %s twice", in.InstanceID)
			}
			seen[in.InstanceID] = true
			if strings.TrimSpace(in.Name) == "" || len(in.Name) > 256 {
				t.Fatalf("instance name %q", in.Name)
			}
			finite("instance cpu", in.CPUUsagePercent, 0, 100)
			finite("instance memory percent", in.MemoryUsagePercent, 0, 100)
		}
	}
}
