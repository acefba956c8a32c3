package reporter

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

func TestClassify(t *testing.T) {
	for status, want := range map[int]outcome{
		200: delivered, 202: delivered, 204: delivered,
		400: permanent,
		401: unauthorized, 403: unauthorized,
		404: retryable, 405: retryable, 409: retryable, 415: retryable, 422: retryable, 418: retryable, 499: retryable,
		408: retryable, 429: retryable, 500: retryable, 502: retryable, 503: retryable, 504: retryable, 599: retryable,
		413: tooLarge,
		301: retryable, 100: retryable,
	} {
		if got := classify(status); got != want {
			t.Errorf("classify(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-3", 0},
		{"999999999", maxRetryAfter},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := time.Second, time.Minute
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, time.Second, 2 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{6, 30 * time.Second, time.Minute}, // 64 s capped at 60 s
		{50, 30 * time.Second, time.Minute},
	}
	for _, tt := range tests {
		if got := backoff(tt.n, lo, hi, func() float64 { return 0 }); got != tt.min {
			t.Errorf("backoff(%d) with no jitter = %v, want %v", tt.n, got, tt.min)
		}
		if got := backoff(tt.n, lo, hi, func() float64 { return 0.999999 }); got > tt.max || got < tt.max-time.Millisecond {
			t.Errorf("backoff(%d) with full jitter = %v, want ~%v", tt.n, got, tt.max)
		}
	}
}

func TestRetryWaitPrefersRetryAfter(t *testing.T) {
	if got := retryWait(attempt{retryAfter: 7 * time.Second}, 10, time.Second, time.Minute); got != 7*time.Second {
		t.Errorf("retryWait with Retry-After 7s = %v", got)
	}
	if got := retryWait(attempt{}, 0, time.Second, time.Minute); got < 500*time.Millisecond || got > time.Second {
		t.Errorf("retryWait without a hint = %v, want the first backoff step", got)
	}
}

func TestEncodeBatchIsValidIngestBody(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var payloads [][]byte
	for i := range 3 {
		s := metric.Sample{CollectedAt: now.Add(time.Duration(i) * time.Second), RAMTotalBytes: 100, RAMUsedBytes: 50, RAMUsagePercent: 50}
		b, _ := json.Marshal(s)
		payloads = append(payloads, b)
	}
	b, err := metric.DecodeBatch(encodeBatch("web-1", 10*time.Second, payloads), "web-1", now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Samples) != 3 || !b.Samples[2].CollectedAt.Equal(now.Add(2*time.Second)) {
		t.Errorf("decoded %+v", b.Samples)
	}
	if b.Interval != 10*time.Second {
		t.Errorf("interval %v, want the reporter's 10s", b.Interval)
	}
}

func TestServerMessage(t *testing.T) {
	for in, want := range map[string]string{
		`{"error":"samples[0].cpuUsagePercent: must be between 0 and 100"}`: "samples[0].cpuUsagePercent: must be between 0 and 100",
		"Bad Gateway\n": "Bad Gateway",
		"":              "(no message)",
	} {
		if got := serverMessage([]byte(in)); got != want {
			t.Errorf("serverMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
