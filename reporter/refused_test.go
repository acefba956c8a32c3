package reporter_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestInstancesRefusedLogged: a 202 that refused some instances' readings
// (ids neither derived from this server nor bound to it) is delivered, and
// the log says which and what to do.
func TestInstancesRefusedLogged(t *testing.T) {
	f := newFakeIngest(t)
	f.refused = 1
	var logs bytes.Buffer
	a := newAgent(t, config(t, f, t.TempDir()), &logs)
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if len(f.stored()) == 0 || a.Stats().Pending != 0 || !strings.Contains(out, "refused some instances") ||
		!strings.Contains(out, "0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f") || !strings.Contains(out, "vitalsctl instance bind") {
		t.Fatalf("stored %d, stats %+v, logs:\n%s", len(f.stored()), a.Stats(), out)
	}
}
