package loadtest_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/vitals-dev/vitals/localdev/loadtest"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// A small in-process run delivers every update to every client.
func TestLoadInProcess(t *testing.T) {
	r := redistest.New(t)
	var out bytes.Buffer
	err := loadtest.Main(context.Background(), []string{
		"-inprocess", "-redis", r.URL, "-prefix", r.Prefix,
		"-ws", "40", "-sse", "6", "-servers", "4", "-rate", "5",
		"-warmup", "500ms", "-duration", "2s",
	}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`delivered: (\d+) messages = \d+ msg/s \(([\d.]+)% of`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("no delivered line")
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Fatal("nothing delivered")
	}
	if pct, _ := strconv.ParseFloat(m[2], 64); pct < 80 {
		t.Errorf("delivered only %.1f%% of the expected messages", pct)
	}
	if !regexp.MustCompile(`latency:   publish→client p50 [\d.]+ ms`).MatchString(out.String()) {
		t.Error("no latency figures")
	}
}

func TestLoadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := loadtest.Main(context.Background(), []string{"-h"}, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte("-ws")) {
		t.Errorf("usage: %s", out.String())
	}
	if err := loadtest.Main(context.Background(), []string{"-ws", "0", "-sse", "0"}, &out); err == nil {
		t.Error("no clients: want an error")
	}
}
