package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// heldStore holds the Ingest calls of one server until release is closed:
// a heavy batch that is slow to store keeps its share of the decode
// budget for as long as the test wants.
type heldStore struct {
	*redisstore.Store
	server  string
	entered chan struct{}
	release chan struct{}
}

func (s *heldStore) Ingest(ctx context.Context, serverID string, samples []metric.Sample) (metric.IngestResult, error) {
	if serverID == s.server {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-s.release
	}
	return s.Store.Ingest(ctx, serverID, samples)
}

// TestIngestHeavyHostCannotStallOthers: a host that keeps the decode
// budget busy with heavy batches gets 503 + Retry-After at once for a
// second heavy batch of its own, and another host's small batch is
// accepted meanwhile, without waiting behind it (it used to queue behind
// any waiting heavy batch and get 503 when the wait ran out).
func TestIngestHeavyHostCannotStallOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	hogKey, err := e.store.AddHost(ctx, "hog")
	if err != nil {
		t.Fatal(err)
	}
	held := &heldStore{Store: e.store, server: "hog", entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := httpapi.NewIngest(httpapi.IngestDeps{
		Store: held, Keys: e.store, Now: time.Now,
		DecodeBudget: 1 << 20, BudgetWait: 20 * time.Second,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	released := false
	defer func() {
		if !released {
			close(held.release)
		}
	}()

	// 600 KB decoded (heavy); two do not fit the 1 MiB budget at once.
	heavy := gz(t, batch(t, 1000, nil))
	post := func(r *http.Request) response {
		t.Helper()
		req, err := http.NewRequest(r.Method, srv.URL+r.URL.Path, r.Body)
		if err != nil {
			t.Error(err)
			return response{}
		}
		req.Header = r.Header
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return response{}
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return decode(t, resp.StatusCode, resp.Header, raw)
	}
	first := make(chan response, 1)
	go func() { first <- post(signed("hog", hogKey, heavy, true)) }()
	select {
	case <-held.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the first heavy batch never reached the store")
	}

	// The hog's second heavy batch: refused at once, not queued.
	second := make(chan response, 1)
	go func() { second <- post(signed("hog", hogKey, heavy, true)) }()
	refused := false
	select {
	case res := <-second:
		res.want(t, http.StatusServiceUnavailable, "")
		if res.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		refused = true
	case <-time.After(5 * time.Second):
		// It waits in the queue: the small batch below then waits
		// behind it.
		t.Log("the second heavy batch of one host is queued, not refused")
	}

	// Another host's ordinary batch is stored while the hog holds its
	// share of the budget.
	small := make(chan response, 1)
	go func() { small <- post(signed(e.server, e.key, gz(t, batch(t, 3, nil)), true)) }()
	select {
	case res := <-small:
		res.want(t, http.StatusAccepted, "")
	case <-time.After(10 * time.Second):
		t.Fatal("a small batch of another host waits behind the hog's heavy batches")
	}

	close(held.release)
	released = true
	(<-first).want(t, http.StatusAccepted, "")
	if !refused {
		t.Error("the hog's second heavy batch was queued behind its first")
		<-second
	}
}
