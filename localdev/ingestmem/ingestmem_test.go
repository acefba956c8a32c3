package ingestmem

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestHeavyBatchesStayUnderUnitLimit runs the real ingest process with 8
// maximal batches (1,000 samples × 38 instances) posted at once and
// checks its peak RSS stays well under the systemd unit's MemoryMax=256M,
// with every batch stored (503s retried as the reporter does). At a745124
// the same run peaked at 503 MiB. VITALS_INGESTMEM_BIN measures another
// build (e.g. an older commit's) instead of this tree's.
func TestHeavyBatchesStayUnderUnitLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and loads a real ingest process; -short skips it")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := os.Getenv("VITALS_INGESTMEM_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "ingest")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/vitals-dev/vitals/functions/ingest").CombinedOutput(); err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
	}
	url, stop, err := startRedis(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const n = 8
	r, err := measure(ctx, options{bin: bin, samples: 1000, instances: 38, timeout: 3 * time.Minute}, url, "memtest:", n, t.Output())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d concurrent: peak RSS %s, %d accepted, %d answered 503 and retried, %s", n, mib(r.hwm), r.accepted, r.busy, r.wall)
	if r.accepted != n || r.other != 0 {
		t.Errorf("accepted %d of %d, %d other answers (%s)", r.accepted, n, r.other, r.firstOther)
	}
	if limit := int64(160 << 20); r.hwm > limit {
		t.Errorf("peak RSS %s, want at most %s (the unit allows 256 MiB)", mib(r.hwm), mib(limit))
	}
}
