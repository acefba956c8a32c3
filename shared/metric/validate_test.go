package metric_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

func TestParseUUID(t *testing.T) {
	tests := []struct {
		in, want string // want "" = invalid
	}{
		{"0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7b", "0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7b"},
		{"0B6C1C8E-4F0A-4A8E-9D3B-2A1F0E9C8D7B", "0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7b"},
		{"00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"}, // nil UUID: any version
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		{"", ""},
		{"web-1", ""},
		{"0b6c1c8e4f0a4a8e9d3b2a1f0e9c8d7b", ""}, // no dashes
		{"{0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7b}", ""}, // braces
		{"urn:uuid:0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7b", ""},
		{"0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7", ""},     // short
		{"0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7bb", ""},   // long
		{"0b6c1c8e-4f0a-4a8e-9d3b_2a1f0e9c8d7b", ""},    // wrong separator
		{"0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7g", ""},    // non-hex
		{"0b6c1c8-e4f0a-4a8e-9d3b-2a1f0e9c8d7b", ""},    // dash misplaced
		{"0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7\x00", ""}, // NUL
		{"0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8dé", ""},     // multi-byte, right length
		{" 0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7", ""},    // leading space
		{"0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7b\n", ""},  // trailing newline
	}
	for _, tc := range tests {
		got, err := metric.ParseUUID(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, metric.ErrInvalid) {
				t.Errorf("ParseUUID(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseUUID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestInstanceUUID checks against vectors computed independently with
// Python: uuid.uuid5(uuid.UUID(InstanceNamespace), server + "/" + name).
func TestInstanceUUID(t *testing.T) {
	tests := []struct{ server, name, want string }{
		{"web-1", "postgres", "ed077c46-3ea9-5dbc-baf5-f9c99bb1b4ca"},
		{"myhost", "localdev", "5dd858c8-3e84-56db-bed9-eea31d3f8f31"},
		{"a", "", "3550f355-f6d8-51bc-896e-fdcf2d953a81"},
	}
	for _, tc := range tests {
		got := metric.InstanceUUID(tc.server, tc.name)
		if got != tc.want {
			t.Errorf("InstanceUUID(%q, %q) = %s, want %s", tc.server, tc.name, got, tc.want)
		}
		if again := metric.InstanceUUID(tc.server, tc.name); again != got {
			t.Errorf("InstanceUUID not stable: %s then %s", got, again)
		}
		if p, err := metric.ParseUUID(got); err != nil || p != got {
			t.Errorf("InstanceUUID %s does not parse as itself: %q, %v", got, p, err)
		}
		if got[14] != '5' {
			t.Errorf("%s: version nibble %c, want 5", got, got[14])
		}
		if !strings.ContainsRune("89ab", rune(got[19])) {
			t.Errorf("%s: variant nibble %c, want RFC 4122 (8, 9, a or b)", got, got[19])
		}
	}
	if metric.InstanceUUID("web-1", "postgres") == metric.InstanceUUID("web-2", "postgres") {
		t.Error("different servers, same instance id")
	}
	// The separator keeps ("a/b", "c") and ("a", "b/c") apart only as far as
	// server ids cannot contain '/', which ValidServerID guarantees.
	if metric.ValidServerID("a/b") {
		t.Error("a server id with '/' would make InstanceUUID ambiguous")
	}
}

func TestParsePeriod(t *testing.T) {
	for _, p := range metric.StandardPeriods {
		got, err := metric.ParsePeriod(p.Name, nil)
		if err != nil || got != p {
			t.Errorf("ParsePeriod(%q) = %v, %v", p.Name, got, err)
		}
	}
	if got, err := metric.ParsePeriod("", nil); err != nil || got != metric.DefaultPeriod || got.Name != "1h" || got.Window != time.Hour {
		t.Errorf(`ParsePeriod("") = %v, %v; want the 1h default`, got, err)
	}
	want := map[string]time.Duration{"1h": time.Hour, "6h": 6 * time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}
	for name, d := range want {
		if got, _ := metric.ParsePeriod(name, nil); got.Window != d {
			t.Errorf("%s window = %v, want %v", name, got.Window, d)
		}
	}
	for _, bad := range []string{"2h", "1H", "60m", "1d", "168h", " 1h", "1h ", "7D", "all", "-1h"} {
		_, err := metric.ParsePeriod(bad, nil)
		if !errors.Is(err, metric.ErrInvalid) || !strings.Contains(err.Error(), "period must be one of 1h, 6h, 24h, 7d") {
			t.Errorf("ParsePeriod(%q) error = %v", bad, err)
		}
	}
	// A deployment with a longer tier allows more periods, and only those.
	p90 := metric.Period{Name: "90d", Window: 90 * 24 * time.Hour}
	allowed := []metric.Period{metric.Period1h, p90}
	if got, err := metric.ParsePeriod("90d", allowed); err != nil || got != p90 {
		t.Errorf("ParsePeriod(90d, custom) = %v, %v", got, err)
	}
	if _, err := metric.ParsePeriod("7d", allowed); err == nil || !strings.Contains(err.Error(), "1h, 90d") {
		t.Errorf("ParsePeriod(7d, custom) error = %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"10s": 10 * time.Second, "30m": 30 * time.Minute, "2h": 2 * time.Hour, "1h30m": 90 * time.Minute,
		"1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "90d": 90 * 24 * time.Hour, "500ms": 500 * time.Millisecond,
	}
	for in, want := range good {
		if got, err := metric.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "0d", "-1d", "1.5d", "1dd", "7 d", "0s", "-5m", "0", "10", "1w", "abc", "+d"} {
		if got, err := metric.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		10 * time.Second:          "10s",
		90 * time.Second:          "90s",
		time.Minute:               "1m",
		5 * time.Minute:           "5m",
		90 * time.Minute:          "90m",
		time.Hour:                 "1h",
		24 * time.Hour:            "24h", // the oCore period name, not "1d"
		48 * time.Hour:            "2d",
		7 * 24 * time.Hour:        "7d",
		90 * 24 * time.Hour:       "90d",
		36 * time.Hour:            "36h",
		2*time.Hour + time.Minute: "121m",
	}
	for d, want := range tests {
		got := metric.FormatDuration(d)
		if got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := metric.ParseDuration(got); err != nil || back != d {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", d, back, err)
		}
	}
	for _, p := range metric.StandardPeriods {
		if got := metric.FormatDuration(p.Window); got != p.Name {
			t.Errorf("FormatDuration(%s window) = %q", p.Name, got)
		}
	}
}

func TestValidServerID(t *testing.T) {
	good := []string{"a", "web-1", "WEB_1", "host.example.com", "10.0.0.1", strings.Repeat("x", 128), "-", "..."}
	bad := []string{"", strings.Repeat("x", 129), "web 1", "web/1", "{web}", "a:b", "a*", "*", "é", "web\n", "a\x00", "tab\t", "a,b", "a@b"}
	for _, id := range good {
		if !metric.ValidServerID(id) {
			t.Errorf("ValidServerID(%q) = false", id)
		}
		if err := metric.CheckServerID(id); err != nil {
			t.Errorf("CheckServerID(%q) = %v", id, err)
		}
	}
	for _, id := range bad {
		if metric.ValidServerID(id) {
			t.Errorf("ValidServerID(%q) = true", id)
		}
		if err := metric.CheckServerID(id); !errors.Is(err, metric.ErrInvalid) {
			t.Errorf("CheckServerID(%q) = %v, want ErrInvalid", id, err)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	err := metric.Errorf(metric.ErrNotFound, "server %q has no data", "web-1")
	if err.Error() != `server "web-1" has no data` {
		t.Errorf("message = %q", err)
	}
	if !errors.Is(err, metric.ErrNotFound) || errors.Is(err, metric.ErrInvalid) {
		t.Error("kind not seen through errors.Is")
	}
	wrapped := errors.Join(errors.New("context"), err)
	var me *metric.Error
	if !errors.As(wrapped, &me) || !errors.Is(me.Kind, metric.ErrNotFound) {
		t.Error("*metric.Error not found through wrapping")
	}
}

func TestPointIDAndRawMetrics(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 7, 0, time.UTC)
	if got := metric.PointID("web-1", 10*time.Second, at.Truncate(10*time.Second)); got != "web-1-10s-1714564800" {
		t.Errorf("PointID = %q", got)
	}
	s := metric.Sample{CollectedAt: at, CPUUsagePercent: 40, CPULoad1m: 2, RAMUsedBytes: 7, RAMUsagePercent: 10,
		DiskUsagePercent: 20, SwapUsedBytes: u64(3), NetworkRxBytesPerSec: f64(5)}
	m := metric.RawServerMetric("web-1", &s, 10*time.Second)
	if m.ID != "web-1-10s-1714564800" || m.ServerID != "web-1" || !m.CollectedAt.Equal(at) || m.Samples != 1 {
		t.Errorf("RawServerMetric identity = %+v", m)
	}
	if m.CPUUsagePercentMax != 40 || m.CPULoad1mMax != 2 || m.RAMUsedBytesMax != 7 || m.SwapUsedBytes != 3 ||
		m.SwapUsedBytesMax != 3 || m.NetworkRxBytesPerSec != 5 || m.NetworkRxBytesPerSecMax != 5 || m.NetworkTxBytesPerSec != 0 {
		t.Errorf("RawServerMetric values = %+v", m)
	}
	in := metric.InstanceSample{InstanceID: uuidA, Name: "db", CPUUsagePercent: 3, MemoryUsedBytes: 9, MemoryUsagePercent: 1}
	im := metric.RawInstanceMetric("web-1", at, &in, time.Minute)
	if im.ID != uuidA+"-60s-1714564800" || im.InstanceID != uuidA || im.ServerID != "web-1" || im.Name != "db" ||
		im.CPUUsagePercentMax != 3 || im.MemoryUsedBytesMax != 9 || im.Samples != 1 {
		t.Errorf("RawInstanceMetric = %+v", im)
	}
}

func TestCheckIngestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://vitals.example.com/api/ingest": "",
		"http://127.0.0.1:8080/api/ingest":      "",
		"vitals.example.com/api/ingest":         "absolute http(s) URL",
		"ftp://vitals.example.com/api/ingest":   "absolute http(s) URL",
		"https:///api/ingest":                   "absolute http(s) URL",
		"https://u:p@vitals.example.com/":       "must not carry credentials",
		"ftp://u:p@vitals.example.com/":         "absolute http(s) URL",
	} {
		err := metric.CheckIngestURL(in)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckIngestURL(%q) = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "u:p") {
			t.Errorf("CheckIngestURL(%q) echoes credentials: %v", in, err)
		}
	}
}
