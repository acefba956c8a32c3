package alert_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/metric"
)

func TestDecodeRuleContractExamples(t *testing.T) {
	for _, body := range []string{
		`{"name": "cpu high", "metric": "cpuUsagePercent", "op": ">", "value": 90, "for": "2m", "servers": ["web-*"], "channels": ["ops"]}`,
		`{"name": "host down", "metric": "nodata", "for": "30s", "servers": ["*"], "channels": ["ops"]}`,
		`{"name": "pg mem", "metric": "memoryUsagePercent", "op": ">=", "value": 80, "clear": 70, "for": "1m", "servers": ["db-1"], "instances": ["postgres*"], "channels": [], "repeat": "1h", "group": "0s"}`,
	} {
		r, err := alert.DecodeRule([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if r.Name == "" || r.Channels == nil {
			t.Fatalf("decoded %+v", r)
		}
	}
}

func TestDecodeRuleNamesTheField(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"metric":"nodata","servers":["*"]}`, "name:"},
		{`{"name":"x","servers":["*"]}`, "metric:"},
		{`{"name":"x","metric":"bogus","op":">","value":1,"servers":["*"]}`, "metric:"},
		{`{"name":"x","metric":"cpuUsagePercent","value":1,"servers":["*"]}`, "op:"},
		{`{"name":"x","metric":"cpuUsagePercent","op":"==","value":1,"servers":["*"]}`, "op:"},
		{`{"name":"x","metric":"cpuUsagePercent","op":">","servers":["*"]}`, "value:"},
		{`{"name":"x","metric":"cpuUsagePercent","op":">","value":90,"clear":95,"servers":["*"]}`, "clear:"},
		{`{"name":"x","metric":"cpuUsagePercent","op":">","value":90,"for":"soon","servers":["*"]}`, "for:"},
		{`{"name":"x","metric":"cpuUsagePercent","op":">","value":90,"for":"-1s","servers":["*"]}`, "for:"},
		{`{"name":"x","metric":"nodata","op":">","servers":["*"]}`, "op:"},
		{`{"name":"x","metric":"nodata","servers":[]}`, "servers:"},
		{`{"name":"x","metric":"nodata","servers":["bad id"]}`, "servers[0]:"},
		{`{"name":"x","metric":"nodata","servers":["[x"]}`, "servers[0]:"},
		{`{"name":"x","metric":"nodata","servers":["tag:env=prod"]}`, "servers[0]:"},
		{`{"name":"x","metric":"nodata","servers":["*"],"channels":["Ops!"]}`, "channels[0]:"},
		{`{"name":"x","metric":"nodata","servers":["*"],"repeat":"10s"}`, "repeat:"},
		{`{"name":"x","metric":"nodata","servers":["*"],"group":"1h"}`, "group:"},
		{`{"name":"x","metric":"nodata","servers":["*"],"colour":"red"}`, "colour:"},
		{`{"name":"x","metric":"nodata","servers":"*"}`, "servers:"},
		{`{"name":"x","metric":"nodata","servers":["*"]} {}`, "body:"},
		{`{"name":"x","metric":"memoryUsagePercent","op":">","value":1,"servers":["*"]}`, "metric:"},
	} {
		_, err := alert.DecodeRule([]byte(tc.body))
		if !errors.Is(err, metric.ErrInvalid) || !strings.HasPrefix(err.Error(), tc.field) {
			t.Errorf("%s: got %v, want ErrInvalid starting %q", tc.body, err, tc.field)
		}
	}
}

func TestFieldsCoverServerAndInstanceMetrics(t *testing.T) {
	m := metric.ServerMetric{CPUUsagePercent: 12.5, RAMUsedBytes: 42, NetworkRxBytesPerSec: 3}
	for name, want := range map[string]float64{"cpuUsagePercent": 12.5, "ramUsedBytes": 42, "networkRxBytesPerSec": 3} {
		f, ok := alert.FieldOf(name, false)
		if !ok {
			t.Fatalf("%s not a server field", name)
		}
		if v, ok := f.Value(&m); !ok || v != want {
			t.Errorf("%s = %v, %v; want %v", name, v, ok, want)
		}
	}
	used := uint64(7)
	im := metric.InstanceMetric{MemoryUsagePercent: 55, DiskUsedBytes: &used}
	f, _ := alert.FieldOf("diskUsedBytes", true)
	if v, ok := f.Value(&im); !ok || v != 7 {
		t.Errorf("diskUsedBytes = %v, %v", v, ok)
	}
	f, _ = alert.FieldOf("diskTotalBytes", true)
	if _, ok := f.Value(&im); ok {
		t.Error("absent optional field read as present")
	}
	if _, ok := alert.FieldOf("serverId", false); ok {
		t.Error("a string field is a rule metric")
	}
}

func TestRuleFiringWithClear(t *testing.T) {
	v, c := 90.0, 80.0
	r := alert.Rule{Op: alert.OpGT, Value: &v, Clear: &c}
	if r.Firing(85, false) || !r.Firing(85, true) || r.Firing(80, true) || !r.Firing(91, false) {
		t.Fatal("hysteresis wrong")
	}
}

func TestDecodeChannelNeverEchoesURL(t *testing.T) {
	c, err := alert.DecodeChannel([]byte(`{"name":"ops","url":"webhook+https://hooks.example.com/secret-path?token=abc"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Secret == "" || c.Kind != "webhook" || strings.Contains(c.Target, "secret") || strings.Contains(c.Target, "abc") {
		t.Fatalf("%+v", c)
	}
	if p := c.Public(); p.URL != "" || p.Secret != "" {
		t.Fatalf("public view leaks: %+v", p)
	}
	s, err := alert.DecodeChannel([]byte(`{"name":"chat","url":"slack://xoxb-token@C123"}`), time.Now())
	if err != nil || s.Kind != "slack" || strings.Contains(s.Target, "xoxb") || s.Secret != "" {
		t.Fatalf("%+v %v", s, err)
	}
	_, err = alert.DecodeChannel([]byte(`{"name":"x","url":"https://user:pw@host/x"}`), time.Now())
	if err == nil || strings.Contains(err.Error(), "pw") {
		t.Fatalf("plain https: %v", err)
	}
}

func TestScrubRemovesURLs(t *testing.T) {
	got := alert.Scrub(`Post "https://hooks.example.com/T/B/secret": dial tcp: refused`, "secret")
	if strings.Contains(got, "secret") || strings.Contains(got, "hooks.example.com") {
		t.Fatal(got)
	}
}

func TestOnlyServers(t *testing.T) {
	scoped := func(id string) bool { return id == "web-1" }
	all := func(string) bool { return true }
	if alert.OnlyServers([]string{"web-*"}, scoped) || !alert.OnlyServers([]string{"web-1"}, scoped) ||
		alert.OnlyServers([]string{"web-1", "db-1"}, scoped) || !alert.OnlyServers([]string{"*"}, all) {
		t.Fatal("OnlyServers wrong")
	}
}
