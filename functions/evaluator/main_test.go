package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestRunOnceAndLoop: -once makes one pass and sends what is due; the
// loop mode finds a host going silent while it runs and stops on cancel.
func TestRunOnceAndLoop(t *testing.T) {
	r := redistest.New(t)
	ctx := context.Background()
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	store, err := redisstore.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var mu sync.Mutex
	var got []string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer rc.Close()
	as := alertstore.New(store.Client(), store.Prefix(), store.Wrap)
	ch, _ := alert.DecodeChannel([]byte(`{"name":"ops","url":"webhook+`+rc.URL+`"}`), time.Now())
	if err := as.CreateChannel(ctx, ch); err != nil {
		t.Fatal(err)
	}
	rule, _ := alert.DecodeRule([]byte(`{"name":"down","metric":"nodata","for":"1s","servers":["*"],"channels":["ops"],"group":"0s"}`))
	if _, err := as.CreateRule(ctx, rule); err != nil {
		t.Fatal(err)
	}
	sample := func(id string, at time.Time) {
		s := metric.Sample{CollectedAt: at.Truncate(time.Second), RAMTotalBytes: 2, RAMUsedBytes: 1, RAMAvailableBytes: 1, RAMUsagePercent: 50}
		if _, err := store.Ingest(ctx, id, []metric.Sample{s}); err != nil {
			t.Fatal(err)
		}
		if err := store.RecordInterval(ctx, id, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"VITALS_REDIS_URL": r.URL, "VITALS_REDIS_PREFIX": r.Prefix, "VITALS_PUBLIC_URL": "https://vitals.example.com"}
	getenv := func(k string) string { return env[k] }

	sample("old-1", time.Now().Add(-time.Minute))
	var stderr bytes.Buffer
	if err := run(ctx, []string{"-once"}, getenv, &stderr); err != nil {
		t.Fatalf("-once: %v\n%s", err, stderr.String())
	}
	mu.Lock()
	if len(got) != 1 || !strings.Contains(got[0], `"serverId":"old-1"`) || !strings.Contains(got[0], `"url":"https://vitals.example.com/#server=old-1"`) {
		t.Fatalf("-once sent %v", got)
	}
	mu.Unlock()

	lctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(lctx, []string{"-every", "1s"}, getenv, io.Discard) }()
	sample("new-1", time.Now())
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the loop never notified new-1 going silent")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"-every", "10ms"}, getenv, io.Discard); err == nil {
		t.Error("-every 10ms accepted")
	}
}
