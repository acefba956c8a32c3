package streamer

import (
	"fmt"
	"testing"
)

func testAlertFrame(t *testing.T, key, server, state string, v int64) *alertFrame {
	t.Helper()
	f, err := newAlertFrame(fmt.Appendf(nil, `{"key":%q,"serverId":%q,"state":%q,"version":%d}`, key, server, state, v))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAlertQueue: per series at most alertQueueDepth transitions wait, the
// newest last; nothing older than what was accepted passes; series keep
// their own order; resync turns a vanished active series into "ok".
func TestAlertQueue(t *testing.T) {
	q := newAlertQueue()
	all := func(string) bool { return true }
	var got []string
	take := func() []string {
		got = got[:0]
		q.drain(all, func(f *alertFrame) { got = append(got, fmt.Sprintf("%s:%s:%d", f.key, f.state, f.version)) })
		return got
	}
	q.offer(testAlertFrame(t, "r/a", "a", "pending", 5))
	if len(take()) != 0 {
		t.Fatal("a held queue drained")
	}
	q.held = false
	for v := int64(6); v <= 20; v++ {
		q.offer(testAlertFrame(t, "r/a", "a", "firing", v))
	}
	q.offer(testAlertFrame(t, "r/b", "b", "pending", 21))
	q.offer(testAlertFrame(t, "r/a", "a", "resolved", 3)) // older: dropped
	if g := fmt.Sprint(take()); g != "[r/a:firing:17 r/a:firing:18 r/a:firing:19 r/a:firing:20 r/b:pending:21]" {
		t.Fatalf("drained %s", g)
	}
	// r/b vanished while the subscription was down: an "ok" comes.
	if !q.resync([]*alertFrame{testAlertFrame(t, "r/a", "a", "firing", 20)}, all) {
		t.Fatal("resync woke nothing")
	}
	if g := fmt.Sprint(take()); g != "[r/b:ok:21]" {
		t.Fatalf("after resync %s", g)
	}
	// The next real transition of r/b still passes.
	if !q.offer(testAlertFrame(t, "r/b", "b", "pending", 22)) {
		t.Fatal("real transition after a synthetic ok refused")
	}
}
