package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vitals-dev/vitals/reporter"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
	"github.com/vitals-dev/vitals/shared/testlog"
)

// keyLossStack is the real path (ingest and query handlers on a private
// redis-server that the test may flush or restart) with a gate in front of
// ingest, so the test can count what Redis holds at a quiet moment.
type keyLossStack struct {
	t      *testing.T
	redis  *redistest.Server
	rdb    *redis.Client
	store  *redisstore.Store
	srv    *httptest.Server
	token  string
	prefix string

	gate    sync.RWMutex // held for writing while the test counts
	refused atomic.Int64 // 401/403 answers
}

func newKeyLossStack(t *testing.T) *keyLossStack {
	t.Helper()
	ctx := context.Background()
	k := &keyLossStack{t: t, redis: redistest.StartServer(t), prefix: "keyloss:"}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = k.redis.URL, k.prefix
	store, err := redisstore.Open(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	k.store = store
	opt, err := redis.ParseURL(k.redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	k.rdb = redis.NewClient(opt)
	t.Cleanup(func() { k.rdb.Close() })

	secret := []byte("e2e-secret-at-least-16-bytes")
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if k.token, err = auth.IssueToken(secret, []string{serverID}, time.Hour, "", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	ingest := httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Logger: logger})
	query := httpapi.NewQuery(httpapi.QueryDeps{Store: store, Verifier: verifier, Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("/api/ingest", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.gate.RLock()
		defer k.gate.RUnlock()
		rec := &statusRecorder{ResponseWriter: w}
		ingest.ServeHTTP(rec, r)
		if rec.status == http.StatusUnauthorized || rec.status == http.StatusForbidden {
			k.refused.Add(1)
		}
	}))
	mux.Handle("/", query)
	k.srv = httptest.NewServer(mux)
	t.Cleanup(k.srv.Close)
	return k
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// stored counts the samples Redis holds for serverID, from the REST history
// (1 s samples in 10 s points, each with its sample count), with ingest held
// so nothing is half-written.
func (k *keyLossStack) stored() int {
	k.t.Helper()
	k.gate.Lock()
	defer k.gate.Unlock()
	return k.storedLocked()
}

func (k *keyLossStack) storedLocked() int {
	k.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, k.srv.URL+"/api/servers/"+serverID+"/metrics?period=1h", nil)
	req.Header.Set("Authorization", "Bearer "+k.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0 // an empty store does not know the server
	}
	var hist struct {
		Metrics []metric.ServerMetric `json:"metrics"`
	}
	if resp.StatusCode != http.StatusOK {
		k.t.Fatalf("history: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&hist); err != nil {
		k.t.Fatal(err)
	}
	n := 0
	for _, m := range hist.Metrics {
		n += m.Samples
	}
	return n
}

// loseData empties Redis the way an operator or a failover would (FLUSHALL,
// or a restart as an empty replica), after counting what it held, and
// returns that count plus a dump of the host keys to re-enrol with.
func (k *keyLossStack) loseData(restart bool) (held int, hosts string) {
	k.t.Helper()
	ctx := context.Background()
	k.gate.Lock()
	defer k.gate.Unlock()
	held = k.storedLocked()
	hosts, err := k.rdb.Dump(ctx, k.prefix+"hosts").Result()
	if err != nil {
		k.t.Fatalf("dump host keys: %v", err)
	}
	if restart {
		k.redis.Restart(k.t)
	} else if err := k.rdb.FlushAll(ctx).Err(); err != nil {
		k.t.Fatal(err)
	}
	return held, hosts
}

// reEnrol puts the host's old key back (what restoring the hosts hash from a
// backup does): the reporters need no change.
func (k *keyLossStack) reEnrol(hosts string) {
	k.t.Helper()
	if err := k.rdb.Restore(context.Background(), k.prefix+"hosts", 0, hosts).Err(); err != nil {
		k.t.Fatalf("restore host keys: %v", err)
	}
}

func (k *keyLossStack) agent(key []byte, dir string, logs io.Writer) *reporter.Agent {
	k.t.Helper()
	a, err := reporter.New(reporter.Config{
		IngestURL:       k.srv.URL + "/api/ingest",
		ServerID:        serverID,
		HostKey:         key,
		Interval:        time.Second,
		StateDir:        dir,
		BaselineWindow:  100 * time.Millisecond,
		RetryMin:        50 * time.Millisecond,
		RetryMax:        300 * time.Millisecond,
		AuthRetryMin:    100 * time.Millisecond,
		AuthRetryMax:    400 * time.Millisecond,
		ShutdownTimeout: 300 * time.Millisecond,
		Instances:       []reporter.InstanceConfig{{Name: "e2e-self", PID: os.Getpid()}},
	}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		k.t.Fatal(err)
	}
	return a
}

// TestDaemonKeepsSpoolThroughKeyLoss: Redis loses every key (FLUSHALL), so
// ingest answers 401 to a running reporter; it keeps collecting and spooling,
// and once the host is re-enrolled with the same key everything arrives.
// Then the key is rotated: the old reporter keeps its spool, and a reporter
// restarted with the new key on the same state directory delivers it. In
// the end Redis received every sample collected exactly once: none lost,
// none twice.
func TestDaemonKeepsSpoolThroughKeyLoss(t *testing.T) {
	k := newKeyLossStack(t)
	key, err := k.store.AddHost(context.Background(), serverID)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var logs testlog.Buffer
	run := func(a *reporter.Agent) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}
		t.Cleanup(stop)
		return stop
	}

	a1 := k.agent(key, dir, &logs)
	stop1 := run(a1)
	waitFor(t, "the first samples stored", func() bool { return a1.Stats().Accepted >= 2 })

	// Redis loses everything, host keys included.
	before, hosts := k.loseData(false)
	waitFor(t, "samples spooled while the key is unknown", func() bool {
		return a1.Stats().Pending >= 4 && k.refused.Load() >= 3
	})
	k.reEnrol(hosts)
	waitFor(t, "the spool delivered after re-enrolment", func() bool {
		return a1.Stats().Pending == 0 && a1.Stats().Accepted >= a1.Stats().Collected
	})

	// The key is rotated: the running reporter is refused and keeps its
	// spool; restarted with the new key it delivers.
	refusedBefore := k.refused.Load()
	newKey, err := k.store.AddHost(context.Background(), serverID)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "samples spooled after the rotation", func() bool {
		return a1.Stats().Pending >= 2 && k.refused.Load() >= refusedBefore+2
	})
	stop1()
	if a1.Stats().Pending == 0 {
		t.Fatal("the old reporter's spool is empty after the rotation: samples were dropped")
	}
	// Ingest keeps one sample per server and second: a restart within the
	// second of the last sample would make the first new one a duplicate.
	time.Sleep(1100 * time.Millisecond)
	a2 := k.agent(newKey, dir, &logs)
	stop2 := run(a2)
	waitFor(t, "the old spool delivered with the new key", func() bool {
		st := a2.Stats()
		return st.Collected >= 2 && st.Pending == 0
	})
	stop2()

	s1, s2 := a1.Stats(), a2.Stats()
	collected := s1.Collected + s2.Collected
	if s1.Rejected+s2.Rejected != 0 || s1.SpoolDropped+s2.SpoolDropped != 0 || s2.Pending != 0 {
		t.Fatalf("samples dropped: %+v, %+v\n%s", s1, s2, logs.String())
	}
	if s1.Accepted+s2.Accepted != collected || s1.Duplicates+s2.Duplicates != 0 {
		t.Fatalf("collected %d, ingest accepted %d new and %d duplicates: want each exactly once (%+v, %+v)",
			collected, s1.Accepted+s2.Accepted, s1.Duplicates+s2.Duplicates, s1, s2)
	}
	if after := k.stored(); uint64(before+after) != collected {
		t.Fatalf("Redis held %d before the flush and %d after: %d, want every sample collected, %d", before, after, before+after, collected)
	}
	if !strings.Contains(logs.String(), "vitalsctl host add") {
		t.Errorf("the 401 was not logged with what to do:\n%s", logs.String())
	}
}

// TestOnceKeepsSpoolThroughKeyLoss is the cron path: Redis fails over to an
// empty replica, each `once` run exits with an error saying the key was
// refused and keeps its sample; after re-enrolment the next run delivers
// them all.
func TestOnceKeepsSpoolThroughKeyLoss(t *testing.T) {
	k := newKeyLossStack(t)
	ctx := context.Background()
	key, err := k.store.AddHost(ctx, serverID)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var logs testlog.Buffer
	once := func() (reporter.Stats, error) {
		// Ingest keeps one sample per server and second; cron runs are a
		// minute apart.
		time.Sleep(1100 * time.Millisecond)
		a := k.agent(key, dir, &logs)
		err := a.Once(ctx)
		return a.Stats(), err
	}
	collected := uint64(0)
	st, err := once()
	if err != nil {
		t.Fatal(err)
	}
	collected += st.Collected

	before, hosts := k.loseData(true)
	for i := 1; i <= 2; i++ {
		st, err := once()
		collected += st.Collected
		if err == nil || !strings.Contains(err.Error(), "credentials") || !strings.Contains(err.Error(), "stay spooled") {
			t.Fatalf("once with the key unknown = %v, want an error saying the key was refused and the samples stay spooled", err)
		}
		if st.Rejected != 0 || st.Pending != i {
			t.Fatalf("run %d with the key unknown: stats %+v, want %d pending and nothing rejected", i, st, i)
		}
	}
	k.reEnrol(hosts)
	st, err = once()
	if err != nil {
		t.Fatalf("once after re-enrolment: %v\n%s", err, logs.String())
	}
	collected += st.Collected
	if st.Pending != 0 || st.Accepted != 3 || st.Duplicates != 0 {
		t.Fatalf("after re-enrolment: stats %+v, want the 2 spooled samples and this run's delivered once", st)
	}
	if after := k.stored(); uint64(before+after) != collected {
		t.Fatalf("Redis held %d before the failover and %d after, want %d in all", before, after, collected)
	}
}
