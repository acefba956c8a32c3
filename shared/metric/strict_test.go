package metric_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vitals-dev/vitals/shared/metric"
)

// TestDecodeBatchRefusesAmbiguousKeys: a key that appears twice, or in a
// case variant of a known key, is refused with a 400 naming it. Parsers
// disagree on such bodies (encoding/json v1 takes the last duplicate and
// folds case, others take the first or ignore the variant), and the
// signature only proves who sent the bytes, not what each parser reads.
func TestDecodeBatchRefusesAmbiguousKeys(t *testing.T) {
	one, err := json.Marshal(sampleJSON())
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(one), "}")
	inst, _ := json.Marshal(instanceJSON(uuidA, "db"))
	in := strings.TrimSuffix(string(inst), "}")
	tests := []struct{ name, body, want string }{
		{"duplicate sample key", `{"samples":[` + s + `,"cpuUsagePercent":99}]}`, "samples[0].cpuUsagePercent: duplicate key"},
		{"duplicate key through an escape", `{"samples":[` + s + `,"cpu\u0055sagePercent":99}]}`, "samples[0].cpuUsagePercent: duplicate key"},
		{"case variant next to the key", `{"samples":[` + s + `,"CPUUsagePercent":99}]}`, `samples[0].CPUUsagePercent: unknown key; keys are case-sensitive, did you mean "cpuUsagePercent"?`},
		{"case variant alone", strings.Replace(`{"samples":[`+s+`}]}`, `"uptimeSeconds"`, `"UptimeSeconds"`, 1), `samples[0].UptimeSeconds: unknown key`},
		{"duplicate samples", `{"samples":[` + s + `}],"samples":[` + s + `}]}`, "samples: duplicate key"},
		{"duplicate serverId", `{"serverId":"web-1","serverId":"web-2","samples":[` + s + `}]}`, "serverId: duplicate key"},
		{"case variant of serverId", `{"serverId":"web-1","ServerID":"web-2","samples":[` + s + `}]}`, `body: unknown key "ServerID"; keys are case-sensitive, did you mean "serverId"?`},
		{"case variant of samples", `{"Samples":[],"samples":[` + s + `}]}`, `body: unknown key "Samples"`},
		{"duplicate instance key", `{"samples":[` + s + `,"instances":[` + in + `,"name":"web"}]}]}`, "samples[0].instances[0].name: duplicate key"},
		{"case variant in an instance", `{"samples":[` + s + `,"instances":[` + in + `,"InstanceId":"x"}]}]}`, `samples[0].instances[0].InstanceId: unknown key; keys are case-sensitive, did you mean "instanceId"?`},
		{"case variant in a cpu", `{"samples":[` + s + `,"cpus":[{"name":"cpu0","Usage":5}]}]}`, `samples[0].cpus[0].Usage: unknown key`},
		{"duplicate in a disk", `{"samples":[` + s + `,"disks":[{"name":"sda","name":"sdb"}]}]}`, `samples[0].disks[0].name: duplicate key`},
		{"case variant in host", `{"samples":[` + s + `,"host":{"hostname":"a","HostName":"b"}}]}`, `samples[0].host.HostName: unknown key`},
		{"duplicate unknown key", `{"samples":[` + s + `,"extra":1,"extra":2}]}`, "samples[0].extra: duplicate key"},
		{"invalid UTF-8 in a name", `{"samples":[` + s + `,"instances":[` + strings.Replace(in, `"db"`, "\"d\xffb\"", 1) + `}]}]}`, "invalid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := metric.DecodeBatch([]byte(tc.body), testServer, testNow)
			wantInvalid(t, err, tc.want)
		})
	}
	_, err = metric.DecodeBatch([]byte(`{"v":1,"v":2,"samples":[`+s+`}]}`), testServer, testNow)
	wantInvalid(t, err, `body: duplicate key "v"`)
	// A field a newer reporter adds is still skipped, not refused.
	if _, err := metric.DecodeBatch([]byte(`{"samples":[`+s+`,"gpuUsagePercent":3,"host":{"hostname":"a","gpu":"x"}}],"version":2}`), testServer, testNow); err != nil {
		t.Fatalf("unknown fields: %v", err)
	}
}

// TestBoundedEcho: an error that quotes a client's id or value quotes at
// most its first 64 bytes, so a 1 MiB input never comes back as 1 MB.
func TestBoundedEcho(t *testing.T) {
	huge := strings.Repeat("a", 1<<20)
	for name, err := range map[string]error{
		"server id": metric.CheckServerID(huge + " "),
		"uuid":      func() error { _, err := metric.ParseUUID(huge); return err }(),
		"serverId": func() error {
			_, err := metric.DecodeBatch([]byte(`{"serverId":"`+huge+`","samples":[]}`), testServer, testNow)
			return err
		}(),
		"number": func() error {
			_, err := metric.DecodeBatch(batchBody(t, func(s map[string]any) { s["cpuUsagePercent"] = json.Number("1" + strings.Repeat("0", 1<<20)) }), testServer, testNow)
			return err
		}(),
		"collectedAt": func() error {
			_, err := metric.DecodeBatch(batchBody(t, func(s map[string]any) { s["collectedAt"] = huge }), testServer, testNow)
			return err
		}(),
		"key": func() error {
			_, err := metric.DecodeBatch([]byte(`{"`+huge+`":1,"`+huge+`":2}`), testServer, testNow)
			return err
		}(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if len(err.Error()) > 400 {
			t.Errorf("%s: error is %d bytes long: %.100q…", name, len(err.Error()), err)
		}
	}
	if got := metric.Bounded(strings.Repeat("é", 100)); !strings.HasSuffix(got, `…"`) || !strings.Contains(got, "é") {
		t.Errorf("Bounded cut a character or lost the ellipsis: %s", got)
	}
}

// TestServerIDDotSegments: "." and ".." are path segments every URL
// client resolves away, so a server so named is refused everywhere ids are
// checked (vitalsctl host add, ingest, the REST path, the streamer).
func TestServerIDDotSegments(t *testing.T) {
	for _, id := range []string{".", ".."} {
		if metric.ValidServerID(id) {
			t.Errorf("ValidServerID(%q) = true", id)
		}
		if err := metric.CheckServerID(id); err == nil || !strings.Contains(err.Error(), `".."`) {
			t.Errorf("CheckServerID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"...", ".a", "a.", "-.."} {
		if !metric.ValidServerID(id) {
			t.Errorf("ValidServerID(%q) = false", id)
		}
	}
}
