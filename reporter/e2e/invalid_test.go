package e2e_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/reporter/spool"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/testlog"
)

// TestOneInvalidSampleDropsOnlyItself: a spooled batch with one sample the
// server refuses (dated 10 minutes ahead, past the 5-minute skew window, as
// after an NTP step back) among valid ones: the reporter splits the
// refused batch until the offending sample is alone, drops and counts only
// that one, and every valid sample is stored (it used to drop the whole
// batch on the 400).
func TestOneInvalidSampleDropsOnlyItself(t *testing.T) {
	k := newKeyLossStack(t)
	ctx := context.Background()
	key, err := k.store.AddHost(ctx, serverID)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool"), spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const valid = 20
	base := time.Now().Add(-30 * time.Minute).Truncate(10 * time.Second)
	appendSample := func(at time.Time) {
		t.Helper()
		b, err := json.Marshal(metric.Sample{
			CollectedAt:     at.UTC(),
			CPUUsagePercent: 10, RAMTotalBytes: 8 << 30, RAMUsedBytes: 1 << 30, RAMAvailableBytes: 7 << 30, RAMUsagePercent: 12.5,
			DiskTotalBytes: 100 << 30, DiskUsedBytes: 40 << 30, DiskAvailableBytes: 60 << 30, DiskUsagePercent: 40,
			UptimeSeconds: 3600,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.Append(at, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range valid {
		if i == 7 {
			appendSample(time.Now().Add(10 * time.Minute))
		}
		appendSample(base.Add(time.Duration(i) * 10 * time.Second))
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	var logs testlog.Buffer
	a := k.agent(key, dir, &logs)
	err = a.Once(ctx)
	if err == nil || !strings.Contains(err.Error(), "refused 1 samples") {
		t.Errorf("Once: %v, want the one refused sample reported", err)
	}
	st := a.Stats()
	if st.Rejected != 1 || st.Pending != 0 {
		t.Errorf("stats %+v: want 1 rejected, nothing pending", st)
	}
	// The valid spooled samples and the one Once collected.
	if got := k.stored(); got != valid+1 {
		t.Errorf("stored %d samples, want %d; logs:\n%s", got, valid+1, logs.String())
	}
	if n := strings.Count(logs.String(), "it is dropped"); n != 1 {
		t.Errorf("%d drop lines, want 1; logs:\n%s", n, logs.String())
	}
}
