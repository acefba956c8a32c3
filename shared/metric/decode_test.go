package metric_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

const testServer = "web-1"

// testNow is the receiver clock for every decode test.
var testNow = time.Date(2024, 5, 1, 12, 1, 0, 0, time.UTC)

// sampleJSON is a complete, valid wire sample as a map, so each test can
// delete or replace one field. Numbers that must survive exactly are
// json.Number.
func sampleJSON() map[string]any {
	return map[string]any{
		"collectedAt":        "2024-05-01T12:00:00.750Z",
		"cpuUsagePercent":    12.5,
		"cpuLoad1m":          0.5,
		"cpuLoad5m":          0.25,
		"cpuLoad15m":         0,
		"ramTotalBytes":      json.Number("8589934592"),
		"ramUsedBytes":       json.Number("4294967296"),
		"ramAvailableBytes":  json.Number("4294967296"),
		"ramUsagePercent":    50,
		"diskTotalBytes":     json.Number("107374182400"),
		"diskUsedBytes":      json.Number("53687091200"),
		"diskAvailableBytes": json.Number("53687091200"),
		"diskUsagePercent":   50,
		"networkRxBytes":     json.Number("1000"),
		"networkTxBytes":     json.Number("2000"),
		"uptimeSeconds":      json.Number("3600"),
	}
}

func instanceJSON(id, name string) map[string]any {
	return map[string]any{
		"instanceId":         id,
		"name":               name,
		"cpuUsagePercent":    1.5,
		"memoryUsedBytes":    json.Number("1048576"),
		"memoryLimitBytes":   json.Number("2097152"),
		"memoryUsagePercent": 50,
		"diskReadBytes":      json.Number("10"),
		"diskWriteBytes":     json.Number("20"),
	}
}

const (
	uuidA = "0b6c1c8e-4f0a-4a8e-9d3b-2a1f0e9c8d7b"
	uuidB = "5dd858c8-3e84-56db-bed9-eea31d3f8f31"
)

// batchBody encodes {"samples":[valid, mutated]}: the broken sample is the
// second one, so messages must carry the right index.
func batchBody(tb testing.TB, mutate func(s map[string]any)) []byte {
	tb.Helper()
	s := sampleJSON()
	if mutate != nil {
		mutate(s)
	}
	b, err := json.Marshal(map[string]any{"samples": []any{sampleJSON(), s}})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func wantInvalid(tb testing.TB, err error, want string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want one containing %q", want)
	}
	var me *metric.Error
	if !errors.As(err, &me) || !errors.Is(err, metric.ErrInvalid) {
		tb.Fatalf("got %T %v, want an ErrInvalid *metric.Error", err, err)
	}
	if !strings.Contains(err.Error(), want) {
		tb.Fatalf("error %q does not contain %q", err, want)
	}
}

func repeat[T any](n int, v T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestDecodeBatchRequiredFields(t *testing.T) {
	server := []string{
		"collectedAt", "cpuUsagePercent", "cpuLoad1m", "cpuLoad5m", "cpuLoad15m",
		"ramTotalBytes", "ramUsedBytes", "ramAvailableBytes", "ramUsagePercent",
		"diskTotalBytes", "diskUsedBytes", "diskAvailableBytes", "diskUsagePercent",
		"networkRxBytes", "networkTxBytes", "uptimeSeconds",
	}
	for _, f := range server {
		for _, how := range []string{"missing", "null"} {
			t.Run(f+" "+how, func(t *testing.T) {
				body := batchBody(t, func(s map[string]any) {
					if how == "null" {
						s[f] = nil
					} else {
						delete(s, f)
					}
				})
				_, err := metric.DecodeBatch(body, testServer, testNow)
				wantInvalid(t, err, "samples[1]."+f+": required")
			})
		}
	}
	instance := []string{
		"instanceId", "name", "cpuUsagePercent", "memoryUsedBytes", "memoryLimitBytes",
		"memoryUsagePercent", "diskReadBytes", "diskWriteBytes",
	}
	for _, f := range instance {
		t.Run("instance "+f, func(t *testing.T) {
			body := batchBody(t, func(s map[string]any) {
				in := instanceJSON(uuidB, "db")
				delete(in, f)
				s["instances"] = []any{instanceJSON(uuidA, "web"), in}
			})
			_, err := metric.DecodeBatch(body, testServer, testNow)
			wantInvalid(t, err, "samples[1].instances[1]."+f+": required")
		})
	}
}

func TestDecodeBatchSampleValidation(t *testing.T) {
	set := func(kv ...any) func(map[string]any) {
		return func(s map[string]any) {
			for i := 0; i < len(kv); i += 2 {
				s[kv[i].(string)] = kv[i+1]
			}
		}
	}
	instances := func(ins ...map[string]any) func(map[string]any) {
		return func(s map[string]any) {
			list := make([]any, len(ins))
			for i, in := range ins {
				list[i] = in
			}
			s["instances"] = list
		}
	}
	withInst := func(k string, v any) map[string]any {
		in := instanceJSON(uuidA, "web")
		in[k] = v
		return in
	}
	long := strings.Repeat("x", 257)
	n := func(s string) json.Number { return json.Number(s) }

	tests := []struct {
		name   string
		mutate func(map[string]any)
		want   string // "" = valid
	}{
		// Percentages: 0 and 100 included, anything outside refused.
		{"percent 0", set("cpuUsagePercent", 0), ""},
		{"percent 100", set("diskUsagePercent", 100), ""},
		{"percent below 0", set("cpuUsagePercent", -0.1), "samples[1].cpuUsagePercent: must be between 0 and 100"},
		{"percent above 100", set("ramUsagePercent", 100.01), "samples[1].ramUsagePercent: must be between 0 and 100"},
		{"disk percent above 100", set("diskUsagePercent", 250), "samples[1].diskUsagePercent: must be between 0 and 100"},
		// JSON has no NaN or Inf literals; a huge exponent is how they sneak in.
		{"Inf via 1e999", set("cpuUsagePercent", n("1e999")), "samples[1].cpuUsagePercent: must be a finite number"},
		{"-Inf via -1e999", set("cpuLoad1m", n("-1e999")), "samples[1].cpuLoad1m: must be a finite number"},
		{"Inf load", set("cpuLoad15m", n("1e400")), "samples[1].cpuLoad15m: must be a finite number"},
		{"negative load", set("cpuLoad5m", -1), "samples[1].cpuLoad5m: must not be negative"},
		{"large load", set("cpuLoad1m", 512.75), ""},
		// Byte counts: whole, non-negative, within uint64.
		{"negative bytes", set("ramUsedBytes", -1), "samples[1].ramUsedBytes: must not be negative"},
		{"fractional bytes", set("diskUsedBytes", 1.5), "samples[1].diskUsedBytes: must be a non-negative whole number"},
		{"exponent bytes", set("diskTotalBytes", n("1e3")), "samples[1].diskTotalBytes: must be a non-negative whole number"},
		{"Inf bytes", set("networkRxBytes", n("1e999")), "samples[1].networkRxBytes: must be a non-negative whole number"},
		{"bytes over uint64", set("networkTxBytes", n("18446744073709551616")), "samples[1].networkTxBytes: must be at most 18446744073709551615"},
		{"bytes at uint64 max", set("networkTxBytes", n("18446744073709551615")), ""},
		{"negative uptime", set("uptimeSeconds", -5), "samples[1].uptimeSeconds: must not be negative"},
		{"negative optional bytes", set("ramFreeBytes", -1), "samples[1].ramFreeBytes: must not be negative"},
		{"fractional swap", set("swapTotalBytes", 0.5), "samples[1].swapTotalBytes: must be a non-negative whole number"},
		{"negative swap used", set("swapUsedBytes", -2), "samples[1].swapUsedBytes: must not be negative"},
		{"negative rate", set("networkRxBytesPerSec", -1), "samples[1].networkRxBytesPerSec: must not be negative"},
		{"Inf rate", set("networkTxBytesPerSec", n("1e999")), "samples[1].networkTxBytesPerSec: must be a finite number"},
		{"fractional rate", set("networkTxBytesPerSec", 12.5), ""},
		// Finite but absurd: summed into a rollup it would become +Inf.
		{"huge load", set("cpuLoad1m", 1e307), "samples[1].cpuLoad1m: must be at most 1e+12"},
		{"huge rate", set("networkRxBytesPerSec", 1e13), "samples[1].networkRxBytesPerSec: must be at most 1e+12"},
		{"rate at the bound", set("networkRxBytesPerSec", 1e12), ""},
		// Numbers sent as strings are a reporter bug, never converted.
		{"load as string", set("cpuLoad1m", "1"), "samples[1].cpuLoad1m: expected a number, got JSON string"},
		{"bytes as string", set("ramUsedBytes", "4096"), "samples[1].ramUsedBytes: expected a number, got JSON string"},
		{"percent as bool", set("cpuUsagePercent", true), "samples[1].cpuUsagePercent: expected a number, got JSON bool"},
		{"bytes as object", set("diskUsedBytes", map[string]any{}), "samples[1].diskUsedBytes: expected a number, got JSON object"},
		{"instance bytes as string", instances(withInst("memoryUsedBytes", "1")), "samples[1].instances[0].memoryUsedBytes: expected a number, got JSON string"},
		// collectedAt.
		{"collectedAt not RFC 3339", set("collectedAt", "2024-05-01 12:00:00"), `samples[1].collectedAt: must be an RFC 3339 timestamp, got "2024-05-01 12:00:00"`},
		{"collectedAt without zone", set("collectedAt", "2024-05-01T12:00:00"), "samples[1].collectedAt: must be an RFC 3339 timestamp"},
		{"collectedAt unix seconds as string", set("collectedAt", "1714564800"), "samples[1].collectedAt: must be an RFC 3339 timestamp"},
		{"collectedAt empty", set("collectedAt", ""), "samples[1].collectedAt: must be an RFC 3339 timestamp"},
		{"collectedAt a number", set("collectedAt", 1714564800), "samples[1].collectedAt: expected a string, got JSON number"},
		{"collectedAt at the skew limit", set("collectedAt", testNow.Add(metric.MaxClockSkew).Format(time.RFC3339)), ""},
		{"collectedAt far future", set("collectedAt", testNow.Add(metric.MaxClockSkew+time.Second).Format(time.RFC3339)), "samples[1].collectedAt: " + testNow.Add(metric.MaxClockSkew+time.Second).Format(time.RFC3339) + " is in the future"},
		{"collectedAt year 9999", set("collectedAt", "9999-12-31T23:59:59Z"), "is in the future"},
		{"collectedAt old", set("collectedAt", "1999-12-31T23:59:59Z"), "samples[1].collectedAt: 1999-12-31T23:59:59Z is before the year 2000"},
		{"collectedAt before 2000 in UTC", set("collectedAt", "2000-01-01T00:30:00+01:00"), "is before the year 2000"},
		{"collectedAt year 2000", set("collectedAt", "2000-01-01T00:00:00Z"), ""},
		// Detail.
		{"too many cpus", set("cpus", repeat(metric.MaxCPUsPerSample+1, map[string]any{"name": "cpu", "usage": 1})), "samples[1].cpus: at most 1024 entries"},
		{"max cpus", set("cpus", repeat(metric.MaxCPUsPerSample, map[string]any{"name": "cpu", "usage": 1})), ""},
		{"cpu usage above 100", set("cpus", []any{map[string]any{"name": "cpu0", "usage": 1}, map[string]any{"name": "cpu1", "usage": 100.5}}), "samples[1].cpus[1].usage: must be between 0 and 100"},
		{"cpu usage negative", set("cpus", []any{map[string]any{"name": "cpu0", "usage": -1}}), "samples[1].cpus[0].usage: must be between 0 and 100"},
		{"cpu model too long", set("cpus", []any{map[string]any{"name": "cpu0", "model": long}}), "samples[1].cpus[0]: name and model must be at most 256 bytes"},
		{"cpu usage Inf", set("cpus", []any{map[string]any{"name": "cpu0", "usage": n("1e999")}}), "samples[1].cpus[0].usage: must be a finite number, got 1e999"},
		{"too many disks", set("disks", repeat(metric.MaxDisksPerSample+1, map[string]any{"name": "sda"})), "samples[1].disks: at most 256 entries"},
		{"disk name too long", set("disks", []any{map[string]any{"name": long}}), "samples[1].disks[0]: name, mountpoint and fstype must be at most 256 bytes"},
		{"disk negative total", set("disks", []any{map[string]any{"name": "sda", "total": -1}}), "samples[1].disks[0].total: must be a non-negative whole number, got -1"},
		{"host field too long", set("host", map[string]any{"hostname": long}), "samples[1].host: fields must be at most 256 bytes"},
		// Instances.
		{"instance id not a UUID", instances(withInst("instanceId", "web-1")), `samples[1].instances[0].instanceId: must be a UUID, got "web-1"`},
		{"instance id braces", instances(withInst("instanceId", "{"+uuidA+"}")), "samples[1].instances[0].instanceId: must be a UUID"},
		{"instance id not a string", instances(withInst("instanceId", 7)), "samples[1].instances[0].instanceId: expected a string, got JSON number"},
		{"instance name missing", instances(withInst("name", nil)), "samples[1].instances[0].name: required"},
		{"instance name blank", instances(withInst("name", " \t")), "samples[1].instances[0].name: required"},
		{"instance name too long", instances(withInst("name", long)), "samples[1].instances[0].name: must be at most 256 bytes"},
		{"instance duplicate id", instances(instanceJSON(uuidA, "a"), instanceJSON(uuidB, "b"), instanceJSON(strings.ToUpper(uuidA), "c")), "samples[1].instances[2].instanceId: " + uuidA + " appears twice"},
		{"instance percent above 100", instances(withInst("memoryUsagePercent", 101)), "samples[1].instances[0].memoryUsagePercent: must be between 0 and 100"},
		{"instance cpu Inf", instances(withInst("cpuUsagePercent", n("1e999"))), "samples[1].instances[0].cpuUsagePercent: must be a finite number"},
		{"instance negative bytes", instances(withInst("diskReadBytes", -3)), "samples[1].instances[0].diskReadBytes: must not be negative"},
		{"instance fractional disk used", instances(withInst("diskUsedBytes", 2.5)), "samples[1].instances[0].diskUsedBytes: must be a non-negative whole number"},
		{"too many instances", func(s map[string]any) {
			list := make([]any, metric.MaxInstancesPerSample+1)
			for i := range list {
				list[i] = instanceJSON(fmt.Sprintf("00000000-0000-4000-8000-%012d", i), fmt.Sprint("i", i))
			}
			s["instances"] = list
		}, "samples[1].instances: at most 256 entries"},
		// Wrong types.
		{"percent a bool", set("cpuUsagePercent", true), "samples[1].cpuUsagePercent: expected a number, got JSON bool"},
		{"bytes an object", set("ramTotalBytes", map[string]any{}), "samples[1].ramTotalBytes: expected a number, got JSON object"},
		{"percent a non-numeric string", set("ramUsagePercent", "high"), "samples[1].ramUsagePercent: expected a number, got JSON string"},
		{"cpus an object", set("cpus", map[string]any{}), "samples[1].cpus: expected an array, got JSON object"},
		{"instances a string", set("instances", "none"), "samples[1].instances: expected an array, got JSON string"},
		{"host an array", set("host", []any{}), "samples[1].host: expected an object, got JSON array"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := metric.DecodeBatch(batchBody(t, tc.mutate), testServer, testNow)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("DecodeBatch: %v", err)
				}
				if len(b.Samples) != 2 {
					t.Fatalf("got %d samples", len(b.Samples))
				}
				return
			}
			wantInvalid(t, err, tc.want)
			if b.Samples != nil {
				t.Error("a batch came back with the error")
			}
		})
	}
}

func TestDecodeBatchEnvelope(t *testing.T) {
	one, err := json.Marshal(sampleJSON())
	if err != nil {
		t.Fatal(err)
	}
	s := string(one)
	many := func(n int) string { return `{"samples":[` + strings.TrimSuffix(strings.Repeat(s+",", n), ",") + `]}` }
	valid := `{"samples":[` + s + `]}`

	tests := []struct {
		name string
		body string
		want string // "" = valid
	}{
		{"valid", valid, ""},
		{"valid with matching serverId", `{"serverId":"web-1","samples":[` + s + `]}`, ""},
		{"trailing newline", valid + "\n", ""},
		{"max batch", many(metric.MaxSamplesPerBatch), ""},
		{"serverId differs from header", `{"serverId":"web-2","samples":[` + s + `]}`, `serverId: "web-2" does not match the signed X-Vitals-Server "web-1"`},
		{"serverId empty", `{"serverId":"","samples":[` + s + `]}`, "serverId:"},
		{"serverId a number", `{"serverId":1,"samples":[` + s + `]}`, "serverId: expected a string, got JSON number"},
		{"samples missing", `{"serverId":"web-1"}`, "samples: required"},
		{"samples null", `{"samples":null}`, "samples: required"},
		{"samples empty", `{"samples":[]}`, "samples: must not be empty"},
		{"batch too large", many(metric.MaxSamplesPerBatch + 1), "samples: at most 1000 per batch, got more"},
		{"samples an object", `{"samples":{}}`, "samples: expected an array, got JSON object"},
		{"sample a string", `{"samples":["x"]}`, "samples[0]: expected an object, got JSON string"},
		{"body an array", `[` + valid + `]`, "body: expected a JSON object, got array"},
		{"body a string", `"hello"`, "body: expected a JSON object, got string"},
		{"body null", `null`, "body: expected a JSON object, got null"},
		{"empty body", ``, "body: empty"},
		{"blank body", " \n\t", "body: empty"},
		{"second object", valid + `{}`, "body: unexpected data after the JSON object"},
		{"second object spaced", valid + "\n" + valid, "body: unexpected data after the JSON object"},
		{"stray brace", valid + `}`, "body: unexpected data after the JSON object"},
		{"stray bracket", valid + `]`, "body: unexpected data after the JSON object"},
		{"trailing garbage", valid + ` x`, "body: unexpected data after the JSON object"},
		{"trailing comma", valid + `,`, "body: unexpected data after the JSON object"},
		{"truncated", valid[:len(valid)-3], "body:"},
		{"unquoted keys", `{samples:[]}`, "body: malformed JSON at byte 1"},
		{"single quotes", `{'samples':[]}`, "body: malformed JSON"},
		{"NaN literal", strings.Replace(valid, `"cpuUsagePercent":12.5`, `"cpuUsagePercent":NaN`, 1), "body: malformed JSON"},
		{"gzip bytes", "\x1f\x8b\x08\x00\x00\x00\x00\x00", "body: malformed JSON at byte 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := metric.DecodeBatch([]byte(tc.body), testServer, testNow)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("DecodeBatch: %v", err)
				}
				if b.ServerID != testServer {
					t.Errorf("ServerID = %q", b.ServerID)
				}
				return
			}
			wantInvalid(t, err, tc.want)
		})
	}
}

func u64(v uint64) *uint64   { return &v }
func f64(v float64) *float64 { return &v }
func mustJSON(v any) []byte  { b, _ := json.Marshal(v); return b }
func ptrEq[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// TestDecodeBatchHappyPath checks that every field reaches the Batch intact:
// optional pointers present and absent, counters beyond 2^53 (where a float64
// would round), detail, instances, and collectedAt normalised to UTC whole
// seconds (the idempotency key).
func TestDecodeBatchHappyPath(t *testing.T) {
	body := `{
	  "serverId": "web-1",
	  "samples": [
	    {
	      "collectedAt": "2024-05-01T14:00:09.999999999+02:00",
	      "cpuUsagePercent": 37.25, "cpuLoad1m": 1.5, "cpuLoad5m": 1.25, "cpuLoad15m": 0.75,
	      "ramTotalBytes": 17179869184, "ramUsedBytes": 9007199254740993, "ramAvailableBytes": 1,
	      "ramUsagePercent": 99.5, "ramFreeBytes": 123,
	      "swapTotalBytes": 2147483648, "swapUsedBytes": 0, "swapFreeBytes": 2147483648,
	      "diskTotalBytes": 18446744073709551615, "diskUsedBytes": 18446744073709551614,
	      "diskAvailableBytes": 1, "diskUsagePercent": 100,
	      "networkRxBytes": 9007199254740993, "networkTxBytes": 12345678901234567890,
	      "networkRxBytesPerSec": 1024.5, "networkTxBytesPerSec": 0,
	      "uptimeSeconds": 86400,
	      "cpus": [{"name": "cpu0", "model": "EPYC", "usage": 40}, {"name": "cpu1", "model": "EPYC", "usage": 0}],
	      "disks": [{"name": "/dev/sda1", "mountpoint": "/", "fstype": "ext4", "total": 100, "used": 60, "free": 40}],
	      "host": {"hostname": "web-1", "os": "linux", "platform": "debian", "platformVersion": "13",
	               "kernel": "6.12", "arch": "amd64", "reporterVersion": "1.0.0"},
	      "instances": [
	        {"instanceId": "0B6C1C8E-4F0A-4A8E-9D3B-2A1F0E9C8D7B", "name": "postgres",
	         "cpuUsagePercent": 12, "memoryUsedBytes": 9007199254740993, "memoryLimitBytes": 18446744073709551615,
	         "memoryUsagePercent": 0.5, "diskReadBytes": 1, "diskWriteBytes": 2,
	         "diskUsedBytes": 9007199254740995, "diskTotalBytes": 9007199254740997},
	        {"instanceId": "` + uuidB + `", "name": "localdev",
	         "cpuUsagePercent": 0, "memoryUsedBytes": 0, "memoryLimitBytes": 0,
	         "memoryUsagePercent": 0, "diskReadBytes": 0, "diskWriteBytes": 0}
	      ]
	    },
	    {
	      "collectedAt": "2024-05-01T12:00:10Z",
	      "cpuUsagePercent": 0, "cpuLoad1m": 0, "cpuLoad5m": 0, "cpuLoad15m": 0,
	      "ramTotalBytes": 0, "ramUsedBytes": 0, "ramAvailableBytes": 0, "ramUsagePercent": 0,
	      "diskTotalBytes": 0, "diskUsedBytes": 0, "diskAvailableBytes": 0, "diskUsagePercent": 0,
	      "networkRxBytes": 0, "networkTxBytes": 0, "uptimeSeconds": 0,
	      "unknownField": "ignored, so reporters can add fields before servers learn them"
	    }
	  ]
	}`
	got, err := metric.DecodeBatch([]byte(body), testServer, testNow)
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	want := metric.Batch{ServerID: testServer, Samples: []metric.Sample{
		{
			CollectedAt:     time.Date(2024, 5, 1, 12, 0, 9, 0, time.UTC),
			CPUUsagePercent: 37.25, CPULoad1m: 1.5, CPULoad5m: 1.25, CPULoad15m: 0.75,
			RAMTotalBytes: 17179869184, RAMUsedBytes: 9007199254740993, RAMAvailableBytes: 1,
			RAMUsagePercent: 99.5, RAMFreeBytes: u64(123),
			SwapTotalBytes: u64(2147483648), SwapUsedBytes: u64(0), SwapFreeBytes: u64(2147483648),
			DiskTotalBytes: math.MaxUint64, DiskUsedBytes: math.MaxUint64 - 1,
			DiskAvailableBytes: 1, DiskUsagePercent: 100,
			NetworkRxBytes: 9007199254740993, NetworkTxBytes: 12345678901234567890,
			NetworkRxBytesPerSec: f64(1024.5), NetworkTxBytesPerSec: f64(0),
			UptimeSeconds: 86400,
			CPUs:          []metric.CPU{{Name: "cpu0", Model: "EPYC", Usage: 40}, {Name: "cpu1", Model: "EPYC", Usage: 0}},
			Disks:         []metric.Disk{{Name: "/dev/sda1", Mountpoint: "/", Fstype: "ext4", Total: 100, Used: 60, Free: 40}},
			Host: &metric.HostInfo{Hostname: "web-1", OS: "linux", Platform: "debian", PlatformVersion: "13",
				Kernel: "6.12", Arch: "amd64", ReporterVersion: "1.0.0"},
			Instances: []metric.InstanceSample{
				{InstanceID: uuidA, Name: "postgres", CPUUsagePercent: 12,
					MemoryUsedBytes: 9007199254740993, MemoryLimitBytes: math.MaxUint64, MemoryUsagePercent: 0.5,
					DiskReadBytes: 1, DiskWriteBytes: 2, DiskUsedBytes: u64(9007199254740995), DiskTotalBytes: u64(9007199254740997)},
				{InstanceID: uuidB, Name: "localdev"},
			},
		},
		{CollectedAt: time.Date(2024, 5, 1, 12, 0, 10, 0, time.UTC)},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeBatch mismatch\n got: %s\nwant: %s", mustJSON(got), mustJSON(want))
	}
	// Optional pointers stay nil when absent, so "absent" and "0" differ.
	s := got.Samples[1]
	for name, p := range map[string]*uint64{"ramFreeBytes": s.RAMFreeBytes, "swapTotalBytes": s.SwapTotalBytes, "swapUsedBytes": s.SwapUsedBytes, "swapFreeBytes": s.SwapFreeBytes} {
		if p != nil {
			t.Errorf("%s = %d, want nil", name, *p)
		}
	}
	if s.NetworkRxBytesPerSec != nil || s.NetworkTxBytesPerSec != nil || s.Host != nil {
		t.Error("absent optional fields came back set")
	}
	if in := got.Samples[0].Instances[1]; in.DiskUsedBytes != nil || in.DiskTotalBytes != nil {
		t.Error("instance without a data path got disk usage")
	}
	if !ptrEq(got.Samples[0].SwapUsedBytes, u64(0)) {
		t.Error("an explicit 0 was lost")
	}
	if loc := got.Samples[0].CollectedAt.Location(); loc != time.UTC {
		t.Errorf("collectedAt location %v, want UTC", loc)
	}
}

// TestDecodeBatchTruncatesToSeconds: two readings within one second are the
// same sample as far as idempotency goes.
func TestDecodeBatchTruncatesToSeconds(t *testing.T) {
	for _, at := range []string{"2024-05-01T12:00:00Z", "2024-05-01T12:00:00.000000001Z", "2024-05-01T12:00:00.999999999Z", "2024-05-01T08:00:00.5-04:00"} {
		b, err := metric.DecodeBatch(batchBody(t, func(s map[string]any) { s["collectedAt"] = at }), testServer, testNow)
		if err != nil {
			t.Fatalf("%s: %v", at, err)
		}
		if got, want := b.Samples[1].CollectedAt, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) || got.Nanosecond() != 0 {
			t.Errorf("%s → %v, want %v", at, got, want)
		}
	}
}

func TestDecodeBatchDistinctInstancesBounded(t *testing.T) {
	// 2 samples × 200 instances, all different: 400 series from one request.
	var samples []any
	for i := range 2 {
		s := sampleJSON()
		list := make([]any, 200)
		for j := range list {
			list[j] = instanceJSON(fmt.Sprintf("00000000-0000-4000-8000-%012d", i*1000+j), fmt.Sprint("i", j))
		}
		s["instances"] = list
		samples = append(samples, s)
	}
	body, err := json.Marshal(map[string]any{"samples": samples})
	if err != nil {
		t.Fatal(err)
	}
	_, err = metric.DecodeBatch(body, testServer, testNow)
	wantInvalid(t, err, "samples[1].instances[56].instanceId: at most 256 distinct instances per batch")
}
