package reporter_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/reporter"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/testlog"
)

const serverID = "test-host"

// fakeIngest is an ingest endpoint that checks everything the real one
// checks (gzip, signature, clock, DecodeBatch) and answers with scripted
// statuses.
type fakeIngest struct {
	t   *testing.T
	key []byte
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	batches  []int // samples per request that reached the store
	samples  []metric.Sample
	seen     map[int64]bool
	// respond scripts the answer to request n (0-based); nil or a 2xx
	// status means accept.
	respond func(n int, w http.ResponseWriter) (status int)
	// overLimit, stale and refused are the instancesOverLimit, stale and
	// instancesRefused counts every 202 reports.
	overLimit, stale, refused int
}

func newFakeIngest(t *testing.T) *fakeIngest {
	t.Helper()
	f := &fakeIngest{t: t, key: auth.NewHostKey(), seen: map[int64]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIngest) url() string { return f.srv.URL + "/api/ingest" }

func (f *fakeIngest) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.requests
	f.requests++
	if r.Method != http.MethodPost || r.URL.Path != "/api/ingest" {
		f.t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	raw, _ := io.ReadAll(r.Body)
	if err := auth.VerifyRequest(f.key, r.Header.Get(auth.HeaderTimestamp), r.Header.Get(auth.HeaderServer), raw, r.Header.Get(auth.HeaderSignature), time.Now()); err != nil {
		f.t.Errorf("signature: %v", err)
		http.Error(w, `{"error":"bad signature"}`, http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Encoding") != "gzip" || r.Header.Get(auth.HeaderServer) != serverID {
		f.t.Errorf("headers %v", r.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		f.t.Errorf("gzip: %v", err)
		return
	}
	body, _ := io.ReadAll(zr)
	b, err := metric.DecodeBatch(body, serverID, time.Now())
	if err != nil {
		f.t.Errorf("DecodeBatch: %v", err)
		http.Error(w, `{"error":"invalid"}`, http.StatusBadRequest)
		return
	}
	if f.respond != nil {
		if st := f.respond(n, w); st < 200 || st > 299 {
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"error":"scripted %d"}`, st)
			return
		}
	}
	res := metric.IngestResult{InstancesOverLimit: f.overLimit, Stale: f.stale, InstancesRefused: f.refused}
	if f.refused > 0 {
		res.RefusedReason = "instance 0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f (\"db\"): the id is neither derived from this server's id and the instance name nor bound to this server"
	}
	for _, s := range b.Samples {
		if f.seen[s.CollectedAt.Unix()] {
			res.Duplicates++
			continue
		}
		f.seen[s.CollectedAt.Unix()] = true
		f.samples = append(f.samples, s)
		res.Accepted++
	}
	f.batches = append(f.batches, len(b.Samples))
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(res)
}

func (f *fakeIngest) stored() []metric.Sample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]metric.Sample(nil), f.samples...)
}

func (f *fakeIngest) requestCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fakeIngest) script(fn func(n int, w http.ResponseWriter) int) {
	f.mu.Lock()
	f.respond = fn
	f.mu.Unlock()
}

func config(t *testing.T, f *fakeIngest, dir string) reporter.Config {
	t.Helper()
	return reporter.Config{
		IngestURL:       f.url(),
		ServerID:        serverID,
		HostKey:         f.key,
		Interval:        time.Second,
		StateDir:        dir,
		BaselineWindow:  50 * time.Millisecond,
		RetryMin:        20 * time.Millisecond,
		RetryMax:        100 * time.Millisecond,
		ShutdownTimeout: 2 * time.Second,
		Instances:       []reporter.InstanceConfig{{Name: "self", PID: os.Getpid()}},
	}
}

func newAgent(t *testing.T, cfg reporter.Config, logs io.Writer) *reporter.Agent {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	a, err := reporter.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitFor polls cond until it holds or the test's patience runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOnceDelivers(t *testing.T) {
	f := newFakeIngest(t)
	a := newAgent(t, config(t, f, t.TempDir()), nil)
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := f.stored()
	if len(got) != 1 {
		t.Fatalf("stored %d samples", len(got))
	}
	if len(got[0].Instances) != 1 || got[0].Instances[0].InstanceID != metric.InstanceUUID(serverID, "self") {
		t.Errorf("instances = %+v", got[0].Instances)
	}
	if st := a.Stats(); st.Sent != 1 || st.Accepted != 1 || st.Pending != 0 || st.Collected != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestOnceKeepsCountersBetweenRuns(t *testing.T) {
	f := newFakeIngest(t)
	dir := t.TempDir()
	cfg := config(t, f, dir)
	// A baseline pause this long would make the second run obviously slow;
	// with saved counters it must not happen at all.
	if err := newAgent(t, cfg, nil).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/counters.json"); err != nil {
		t.Fatalf("counters not saved: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // a new second: ingest keeps one sample per second
	cfg.BaselineWindow = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := newAgent(t, cfg, nil).Once(ctx); err != nil {
		t.Fatalf("second run (should need no baseline): %v", err)
	}
	if n := len(f.stored()); n != 2 {
		t.Fatalf("stored %d samples, want 2", n)
	}
}

func TestOnceOutageKeepsSamplesForNextRun(t *testing.T) {
	f := newFakeIngest(t)
	f.script(func(int, http.ResponseWriter) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	cfg := config(t, f, dir)
	a := newAgent(t, cfg, nil)
	err := a.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("Once during an outage = %v, want a delivery error after 3 attempts", err)
	}
	if n := f.requestCount(); n != 3 {
		t.Errorf("requests = %d, want 3 (OnceAttempts)", n)
	}
	if st := a.Stats(); st.Pending != 1 {
		t.Errorf("pending = %d, want the sample spooled", st.Pending)
	}

	time.Sleep(1100 * time.Millisecond)
	f.script(nil)
	if err := newAgent(t, cfg, nil).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := f.stored()
	if len(got) != 2 || !got[0].CollectedAt.Before(got[1].CollectedAt) {
		t.Fatalf("after recovery stored %d samples (want both, oldest first)", len(got))
	}
	if f.batches[len(f.batches)-1] != 2 {
		t.Errorf("once mode sent %v per request, want both in one batch", f.batches)
	}
}

func TestRetryClasses(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		wantRequests int
		wantErr      bool
		wantRejected uint64
		wantPending  int
	}{
		{"500 retried", 500, 3, true, 0, 1},
		{"502 retried", 502, 3, true, 0, 1},
		{"408 retried", 408, 3, true, 0, 1},
		{"429 retried", 429, 3, true, 0, 1},
		{"400 invalid data dropped", 400, 1, true, 1, 0},
		{"413 single sample dropped", 413, 1, true, 1, 0},
		// A refused key: one attempt per cron run (only an operator can
		// fix it), and the sample stays spooled.
		{"401 kept", 401, 1, true, 0, 1},
		{"403 kept", 403, 1, true, 0, 1},
		// Any other status says nothing against the data: kept, retried.
		{"404 kept", 404, 3, true, 0, 1},
		{"405 kept", 405, 3, true, 0, 1},
		{"409 kept", 409, 3, true, 0, 1},
		{"415 kept", 415, 3, true, 0, 1},
		{"422 kept", 422, 3, true, 0, 1},
		{"418 kept", 418, 3, true, 0, 1},
		{"302 kept", 302, 3, true, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIngest(t)
			f.script(func(int, http.ResponseWriter) int { return tt.status })
			a := newAgent(t, config(t, f, t.TempDir()), nil)
			err := a.Once(context.Background())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			st := a.Stats()
			if f.requestCount() != tt.wantRequests || st.Rejected != tt.wantRejected || st.Pending != tt.wantPending {
				t.Errorf("requests %d, stats %+v; want %d requests, %d rejected, %d pending", f.requestCount(), st, tt.wantRequests, tt.wantRejected, tt.wantPending)
			}
		})
	}
}

func TestNetworkErrorIsRetried(t *testing.T) {
	f := newFakeIngest(t)
	cfg := config(t, f, t.TempDir())
	f.srv.Close() // nothing listens any more
	a := newAgent(t, cfg, nil)
	if err := a.Once(context.Background()); err == nil {
		t.Fatal("Once succeeded with the endpoint down")
	}
	if st := a.Stats(); st.Pending != 1 || st.Rejected != 0 {
		t.Errorf("stats = %+v, want the sample spooled, not dropped", st)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	f := newFakeIngest(t)
	f.script(func(n int, w http.ResponseWriter) int {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	cfg := config(t, f, t.TempDir())
	// Without Retry-After the wait would be an hour: the test finishing
	// proves the server's hint replaced the backoff.
	cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := newAgent(t, cfg, nil).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.stored()) != 1 {
		t.Fatal("not delivered after Retry-After")
	}
}

func TestTooLargeHalvesTheBatch(t *testing.T) {
	f := newFakeIngest(t)
	dir := t.TempDir()
	cfg := config(t, f, dir)
	// Spool four samples during an outage...
	f.script(func(int, http.ResponseWriter) int { return 503 })
	cfg.OnceAttempts = 1
	for i := 0; i < 4; i++ {
		newAgent(t, cfg, nil).Once(context.Background())
		time.Sleep(1050 * time.Millisecond)
	}
	// ...then refuse any batch over two samples as too large.
	sizeLimit := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, _ := gzip.NewReader(r.Body)
		body, _ := io.ReadAll(zr)
		var b struct{ Samples []json.RawMessage }
		json.Unmarshal(body, &b)
		if len(b.Samples) > 2 {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			return
		}
		f.serveRaw(w, body)
	})
	big := httptest.NewServer(sizeLimit)
	defer big.Close()
	cfg.IngestURL = big.URL + "/api/ingest"
	if err := newAgent(t, cfg, nil).Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(f.stored()); got != 5 {
		t.Fatalf("stored %d, want all 5", got)
	}
	for _, n := range f.batches {
		if n > 2 {
			t.Errorf("a batch of %d got through the limit", n)
		}
	}
}

// serveRaw stores an already-decompressed body without signature checks
// (the size-limiting front in TestTooLargeHalvesTheBatch consumed the
// signed bytes).
func (f *fakeIngest) serveRaw(w http.ResponseWriter, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := metric.DecodeBatch(body, serverID, time.Now())
	if err != nil {
		f.t.Errorf("DecodeBatch: %v", err)
		w.WriteHeader(400)
		return
	}
	for _, s := range b.Samples {
		if !f.seen[s.CollectedAt.Unix()] {
			f.seen[s.CollectedAt.Unix()] = true
			f.samples = append(f.samples, s)
		}
	}
	f.batches = append(f.batches, len(b.Samples))
	w.WriteHeader(http.StatusAccepted)
}

func TestRunDeliversAndFlushesOnShutdown(t *testing.T) {
	f := newFakeIngest(t)
	a := newAgent(t, config(t, f, t.TempDir()), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "three samples", func() bool { return len(f.stored()) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st.Pending != 0 || st.Sent != st.Collected || int(st.Collected) != len(f.stored()) {
		t.Errorf("after shutdown: stats %+v, stored %d", st, len(f.stored()))
	}
	checkOrdered(t, f.stored())
}

// TestRunOutageLosesNothing cuts ingest off for several samples, then brings
// it back: every sample must arrive, in order, none twice.
func TestRunOutageLosesNothing(t *testing.T) {
	f := newFakeIngest(t)
	var down sync.Mutex
	outage := true
	f.script(func(int, http.ResponseWriter) int {
		down.Lock()
		defer down.Unlock()
		if outage {
			return http.StatusServiceUnavailable
		}
		return http.StatusAccepted
	})
	a := newAgent(t, config(t, f, t.TempDir()), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "four samples spooled during the outage", func() bool { return a.Stats().Pending >= 4 })
	down.Lock()
	outage = false
	down.Unlock()
	waitFor(t, "the backlog delivered", func() bool {
		st := a.Stats()
		return st.Collected >= 6 && st.Pending == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	got := f.stored()
	if int(st.Collected) != len(got) || st.Rejected != 0 || st.SpoolDropped != 0 {
		t.Fatalf("collected %d, stored %d, stats %+v", st.Collected, len(got), st)
	}
	checkOrdered(t, got)
}

func TestRunRestartDeliversOldSpool(t *testing.T) {
	f := newFakeIngest(t)
	f.script(func(int, http.ResponseWriter) int { return http.StatusBadGateway })
	dir := t.TempDir()
	cfg := config(t, f, dir)
	cfg.ShutdownTimeout = 100 * time.Millisecond
	a := newAgent(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "two samples spooled", func() bool { return a.Stats().Pending >= 2 })
	cancel()
	<-done
	spooled := a.Stats().Pending

	f.script(nil)
	b := newAgent(t, cfg, nil)
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- b.Run(ctx2) }()
	waitFor(t, "the old spool delivered", func() bool { return len(f.stored()) >= spooled+1 })
	cancel2()
	<-done2
	checkOrdered(t, f.stored())
}

func TestStateDirIsLocked(t *testing.T) {
	f := newFakeIngest(t)
	dir := t.TempDir()
	a := newAgent(t, config(t, f, dir), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "the daemon to start", func() bool { return len(f.stored()) >= 1 })
	err := newAgent(t, config(t, f, dir), nil).Once(context.Background())
	if !errors.Is(err, reporter.ErrLocked) {
		t.Errorf("second reporter on one state dir: %v, want ErrLocked", err)
	}
	cancel()
	<-done
	// Released on exit.
	if err := newAgent(t, config(t, f, dir), nil).Once(context.Background()); err != nil {
		t.Errorf("after the daemon stopped: %v", err)
	}
}

// TestInstancesOverLimitLogged: a 202 that left instances out (the server
// is at its instance limit) is delivered, and the log says what to do.
func TestInstancesOverLimitLogged(t *testing.T) {
	f := newFakeIngest(t)
	f.overLimit = 2
	var logs bytes.Buffer
	a := newAgent(t, config(t, f, t.TempDir()), &logs)
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.stored()) == 0 || !strings.Contains(logs.String(), "at its instance limit") || !strings.Contains(logs.String(), "VITALS_MAX_INSTANCES_PER_SERVER") {
		t.Fatalf("stored %d, logs:\n%s", len(f.stored()), logs.String())
	}
}

// TestStaleLogged: samples ingest dropped as too old (a spool that held
// them longer than ingest's VITALS_MAX_SAMPLE_AGE) are counted and logged.
func TestStaleLogged(t *testing.T) {
	f := newFakeIngest(t)
	f.stale = 3
	var logs bytes.Buffer
	a := newAgent(t, config(t, f, t.TempDir()), &logs)
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "too old") || !strings.Contains(logs.String(), "VITALS_MAX_SAMPLE_AGE") || a.Stats().Stale != 3 {
		t.Fatalf("stats %+v, logs:\n%s", a.Stats(), logs.String())
	}
}

func TestHostKeyNeverLogged(t *testing.T) {
	f := newFakeIngest(t)
	f.script(func(int, http.ResponseWriter) int { return http.StatusUnauthorized })
	var logs bytes.Buffer
	cfg := config(t, f, t.TempDir())
	a := newAgent(t, cfg, &logs)
	a.Once(context.Background())
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", cfg)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(300 * time.Millisecond); cancel() }()
	a.Run(ctx)
	if strings.Contains(logs.String(), string(f.key)) {
		t.Fatalf("host key in the logs:\n%s", logs.String())
	}
	// A 401 says what to check, since every later batch fails the same way.
	if !strings.Contains(logs.String(), "vitalsctl host list") || !strings.Contains(logs.String(), "NTP") {
		t.Errorf("401 logged without the hint:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "hostKeySet") {
		t.Errorf("config not logged through LogValue:\n%s", logs.String())
	}
}

func TestConfigErrors(t *testing.T) {
	good := reporter.Config{ServerID: "h", IngestURL: "https://x/api/ingest", HostKey: []byte("k"), StateDir: t.TempDir()}
	for name, mutate := range map[string]func(*reporter.Config){
		"no server id":       func(c *reporter.Config) { c.ServerID = "" },
		"bad server id":      func(c *reporter.Config) { c.ServerID = "a b" },
		"interval too short": func(c *reporter.Config) { c.Interval = 100 * time.Millisecond },
		"relative url":       func(c *reporter.Config) { c.IngestURL = "/api/ingest" },
		"ftp url":            func(c *reporter.Config) { c.IngestURL = "ftp://x/api/ingest" },
		"url with password":  func(c *reporter.Config) { c.IngestURL = "https://u:p@x/api/ingest" },
		"bad instance":       func(c *reporter.Config) { c.Instances = []reporter.InstanceConfig{{Name: "x"}} },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			mutate(&c)
			if _, err := reporter.New(c, nil); !errors.Is(err, reporter.ErrConfig) {
				t.Errorf("New = %v, want ErrConfig", err)
			}
		})
	}
	for name, mutate := range map[string]func(*reporter.Config){
		"no url":       func(c *reporter.Config) { c.IngestURL = "" },
		"no key":       func(c *reporter.Config) { c.HostKey = nil },
		"short key":    func(c *reporter.Config) { c.HostKey = auth.NewHostKey()[:63] },
		"quoted key":   func(c *reporter.Config) { c.HostKey = []byte(`"` + string(auth.NewHostKey()[:62]) + `"`) },
		"no state dir": func(c *reporter.Config) { c.StateDir = "" },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			mutate(&c)
			a, err := reporter.New(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Once(context.Background()); !errors.Is(err, reporter.ErrConfig) {
				t.Errorf("Once = %v, want ErrConfig", err)
			}
		})
	}
}

func TestCollectValidates(t *testing.T) {
	a := newAgent(t, reporter.Config{ServerID: serverID, BaselineWindow: 50 * time.Millisecond}, nil)
	s, err := a.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(metric.Batch{Samples: []metric.Sample{s}})
	if _, err := metric.DecodeBatch(body, serverID, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func checkOrdered(t *testing.T, got []metric.Sample) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if !got[i-1].CollectedAt.Before(got[i].CollectedAt) {
			t.Fatalf("samples out of order at %d: %v then %v", i, got[i-1].CollectedAt, got[i].CollectedAt)
		}
	}
}

// TestRunUnauthorizedKeepsSpool: while ingest refuses the host's key (401,
// then 403), the daemon keeps collecting and spooling, backs off, says
// what to check once per attempt, and delivers everything once the key works
// again: nothing is dropped.
func TestRunUnauthorizedKeepsSpool(t *testing.T) {
	f := newFakeIngest(t)
	var mu sync.Mutex
	refusing, refusals := true, 0
	f.script(func(n int, _ http.ResponseWriter) int {
		mu.Lock()
		defer mu.Unlock()
		if refusing {
			refusals++
			if refusals%2 == 0 {
				return http.StatusForbidden
			}
			return http.StatusUnauthorized
		}
		return http.StatusAccepted
	})
	var logs testlog.Buffer
	cfg := config(t, f, t.TempDir())
	cfg.AuthRetryMin, cfg.AuthRetryMax = 50*time.Millisecond, 200*time.Millisecond
	a := newAgent(t, cfg, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor(t, "four samples spooled while the key is refused", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return a.Stats().Pending >= 4 && refusals >= 3
	})
	mu.Lock()
	refusing = false
	n401 := refusals
	mu.Unlock()
	waitFor(t, "the backlog delivered", func() bool {
		st := a.Stats()
		return st.Collected >= 6 && st.Pending == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	got := f.stored()
	if st.Rejected != 0 || st.SpoolDropped != 0 || int(st.Collected) != len(got) || st.Accepted != st.Collected {
		t.Fatalf("collected %d, stored %d, stats %+v: samples lost", st.Collected, len(got), st)
	}
	checkOrdered(t, got)
	out := logs.String()
	hints := strings.Count(out, "ingest refused this host's credentials")
	if hints == 0 || hints > n401+1 || !strings.Contains(out, "vitalsctl host add") || !strings.Contains(out, "NTP") {
		t.Errorf("%d refusals logged %d times (want 1..%d, with the hint):\n%s", n401, hints, n401+1, out)
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("something was dropped:\n%s", out)
	}
	if !strings.Contains(out, "accepts this host's credentials again") {
		t.Errorf("recovery not logged:\n%s", out)
	}
}

// TestOnceDoesNotWaitOutALongRetryAfter: a cron run does not sleep through
// an hour's Retry-After (the next run, a minute later, would find the state
// directory locked; the timer unit would kill it): it stops, keeps the
// sample and says so.
func TestOnceDoesNotWaitOutALongRetryAfter(t *testing.T) {
	f := newFakeIngest(t)
	f.script(func(n int, w http.ResponseWriter) int {
		w.Header().Set("Retry-After", "3600")
		return http.StatusServiceUnavailable
	})
	a := newAgent(t, config(t, f, t.TempDir()), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.Once(ctx)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "stay spooled") {
		t.Fatalf("Once = %v (ctx %v), want an error saying the samples stay spooled, before the test's deadline", err, ctx.Err())
	}
	if st := a.Stats(); st.Pending != 1 || st.Rejected != 0 || f.requestCount() != 1 {
		t.Errorf("stats %+v after %d requests, want the sample spooled after 1", st, f.requestCount())
	}
}
