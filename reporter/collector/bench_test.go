package collector

import (
	"context"
	"os"
	"testing"
	"time"
)

// BenchmarkCollect measures one collection of this machine (every host
// collector plus one process instance), as the daemon does each tick. The
// previous reading is kept, so no baseline pause is included.
func BenchmarkCollect(b *testing.B) {
	s, err := New(Options{
		ServerID:       "bench",
		BaselineWindow: 10 * time.Millisecond,
		Instances:      []InstanceConfig{{Name: "self", PID: os.Getpid()}},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Collect(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Collect(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
