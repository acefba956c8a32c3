package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/reporter"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

const serverID = "e2e-host"

// TestReporterIngestRedisREST runs the whole path: reporter → ingest handler
// (signature, gzip, validation) → Redis → query handler. In the middle the
// ingest goes away (the gateway answers 502, as when the function cannot be
// reached); every sample collected meanwhile must arrive once it is back.
func TestReporterIngestRedisREST(t *testing.T) {
	ctx := context.Background()
	r := redistest.New(t)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	store, err := redisstore.Open(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key, err := store.AddHost(ctx, serverID)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("e2e-secret-at-least-16-bytes")
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	token, err := auth.IssueToken(secret, []string{serverID}, time.Hour, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}

	ingest := httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Logger: logger})
	query := httpapi.NewQuery(httpapi.QueryDeps{Store: store, Verifier: verifier, Logger: logger})
	var down atomic.Bool
	var outageRequests atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/api/ingest", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if down.Load() {
			outageRequests.Add(1)
			http.Error(w, `{"error":"bad gateway"}`, http.StatusBadGateway)
			return
		}
		ingest.ServeHTTP(w, req)
	}))
	mux.Handle("/", query)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	agent, err := reporter.New(reporter.Config{
		IngestURL:      srv.URL + "/api/ingest",
		ServerID:       serverID,
		HostKey:        key,
		Interval:       time.Second,
		StateDir:       t.TempDir(),
		BaselineWindow: 100 * time.Millisecond,
		RetryMin:       50 * time.Millisecond,
		RetryMax:       300 * time.Millisecond,
		Instances:      []reporter.InstanceConfig{{Name: "e2e-self", PID: os.Getpid()}},
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(runCtx) }()
	stopped := false
	stop := func() error {
		stopped = true
		cancel()
		return <-done
	}
	defer func() {
		if !stopped {
			stop()
		}
	}()

	get := func(path string, v any) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK && v != nil {
			if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return resp.StatusCode
	}

	// Before the outage: the first samples show up over REST.
	waitFor(t, "the first samples stored", func() bool { return agent.Stats().Accepted >= 2 })
	var latest metric.ServerMetric
	if st := get("/api/servers/"+serverID+"/metrics/latest", &latest); st != http.StatusOK {
		t.Fatalf("latest: status %d", st)
	}
	if latest.ServerID != serverID || latest.RAMTotalBytes == 0 || latest.DiskTotalBytes == 0 || latest.UptimeSeconds == 0 {
		t.Errorf("latest = %+v", latest)
	}

	// The outage: samples pile up in the spool.
	down.Store(true)
	waitFor(t, "samples spooled during the outage", func() bool { return agent.Stats().Pending >= 4 && outageRequests.Load() >= 2 })
	down.Store(false)
	waitFor(t, "the backlog delivered", func() bool {
		st := agent.Stats()
		return st.Pending == 0 && st.Collected >= 8
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	st := agent.Stats()
	if st.Rejected != 0 || st.SpoolDropped != 0 || st.Pending != 0 {
		t.Fatalf("stats after the outage: %+v", st)
	}
	if st.Accepted != st.Collected {
		t.Fatalf("ingest accepted %d new samples, the reporter collected %d (stats %+v)", st.Accepted, st.Collected, st)
	}

	// History over REST: the 1h period buckets 1 s samples into 10 s points;
	// their sample counts must add up to every sample collected, outage
	// included.
	var hist struct {
		Count   int                   `json:"count"`
		Period  string                `json:"period"`
		Metrics []metric.ServerMetric `json:"metrics"`
	}
	if code := get("/api/servers/"+serverID+"/metrics?period=1h", &hist); code != http.StatusOK {
		t.Fatalf("history: status %d", code)
	}
	total := 0
	for _, m := range hist.Metrics {
		total += m.Samples
	}
	if hist.Period != "1h" || hist.Count != len(hist.Metrics) || uint64(total) != st.Collected {
		t.Fatalf("history: period %q, count %d, %d points aggregating %d samples; collected %d",
			hist.Period, hist.Count, len(hist.Metrics), total, st.Collected)
	}

	// The instance is readable under its derived UUID.
	id := metric.InstanceUUID(serverID, "e2e-self")
	var inst metric.InstanceMetric
	if code := get("/api/instances/"+id+"/monitoring/metrics/latest", &inst); code != http.StatusOK {
		t.Fatalf("instance latest: status %d", code)
	}
	if inst.Name != "e2e-self" || inst.ServerID != serverID || inst.MemoryUsedBytes == 0 || inst.MemoryLimitBytes == 0 {
		t.Errorf("instance = %+v", inst)
	}
	var ihist struct {
		Metrics []metric.InstanceMetric `json:"metrics"`
	}
	if code := get("/api/instances/"+id+"/monitoring/metrics?period=1h", &ihist); code != http.StatusOK {
		t.Fatalf("instance history: status %d", code)
	}
	itotal := 0
	for _, m := range ihist.Metrics {
		itotal += m.Samples
	}
	if uint64(itotal) != st.Collected {
		t.Errorf("instance history aggregates %d samples, want %d", itotal, st.Collected)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
