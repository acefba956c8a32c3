package alert_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/metric"
)

// FuzzDecodeAlertBodies: rule, channel and silence bodies come from the
// network; whatever they hold, decoding never panics, every failure is a
// 400 (ErrInvalid), and a channel error never echoes the URL.
func FuzzDecodeAlertBodies(f *testing.F) {
	for _, s := range []string{
		`{"name": "cpu high", "metric": "cpuUsagePercent", "op": ">", "value": 90, "for": "2m", "servers": ["web-*"], "channels": ["ops"]}`,
		`{"name": "host down", "metric": "nodata", "for": "30s", "servers": ["*"], "channels": ["ops"]}`,
		`{"name":"ops","url":"webhook+https://h/x"}`,
		`{"servers":["web-1"],"until":"2030-01-01T00:00:00Z"}`,
		`{"for": 5}`, `[]`, `{"group": "-1s", "clear": 1e999}`, `{"servers": ["[" ]}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := alert.DecodeRule(b); err != nil && !errors.Is(err, metric.ErrInvalid) {
			t.Fatalf("rule: %v", err)
		} else if err == nil && (r.Name == "" || len(r.Servers) == 0) {
			t.Fatalf("accepted %+v", r)
		}
		if _, err := alert.DecodeChannel(b, now); err != nil && !errors.Is(err, metric.ErrInvalid) {
			t.Fatalf("channel: %v", err)
		}
		if _, err := alert.DecodeSilence(b, now); err != nil && !errors.Is(err, metric.ErrInvalid) {
			t.Fatalf("silence: %v", err)
		}
	})
}
