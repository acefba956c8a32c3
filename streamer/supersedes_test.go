package streamer

import (
	"testing"
	"time"
)

func TestSupersedes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	s := func(d time.Duration) int64 { return now.Add(d).UnixNano() }
	for _, tc := range []struct {
		name      string
		cur, next int64
		want      bool
	}{
		{"newer", s(-20 * time.Second), s(-10 * time.Second), true},
		{"older", s(-10 * time.Second), s(-20 * time.Second), false},
		{"same sample", s(-10 * time.Second), s(-10 * time.Second), false},
		{"latest ahead of the clock: older replaces", s(240 * time.Second), s(-10 * time.Second), true},
		{"latest ahead, same sample re-sent", s(240 * time.Second), s(240 * time.Second), false},
		{"latest exactly now: older does not replace", s(0), s(-time.Second), false},
		{"nothing yet", 0, s(-time.Hour), true},
	} {
		if got := supersedes(tc.cur, tc.next, clock); got != tc.want {
			t.Errorf("%s: supersedes = %v, want %v", tc.name, got, tc.want)
		}
	}
}
