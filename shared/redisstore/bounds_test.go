package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redistest"
)

// openLazy opens the store on url as the functions do (Lazy).
func openLazy(t *testing.T, url string) *Store {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL, cfg.Lazy = url, true
	s, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestClientTimeoutDefaults: a URL without options gets the short
// timeouts; options the URL sets win, and the request budget follows the
// read timeout.
func TestClientTimeoutDefaults(t *testing.T) {
	s := openLazy(t, "redis://127.0.0.1:1")
	o := s.rdb.(*redis.Client).Options()
	if o.ReadTimeout != DefaultReadTimeout || o.WriteTimeout != DefaultWriteTimeout || o.DialTimeout != DefaultDialTimeout ||
		o.PoolTimeout != DefaultPoolTimeout || o.MaxRetries != DefaultMaxRetries || !o.ContextTimeoutEnabled || s.Budget() != DefaultRequestBudget {
		t.Fatalf("defaults: read %s write %s dial %s pool %s retries %d ctx %v budget %s",
			o.ReadTimeout, o.WriteTimeout, o.DialTimeout, o.PoolTimeout, o.MaxRetries, o.ContextTimeoutEnabled, s.Budget())
	}
	s = openLazy(t, "redis://127.0.0.1:1?read_timeout=3s&pool_timeout=4s&max_retries=2")
	o = s.rdb.(*redis.Client).Options()
	if o.ReadTimeout != 3*time.Second || o.PoolTimeout != 4*time.Second || o.MaxRetries != 2 || s.Budget() != 6*time.Second {
		t.Fatalf("explicit: read %s pool %s retries %d budget %s", o.ReadTimeout, o.PoolTimeout, o.MaxRetries, s.Budget())
	}
	if s := openLazy(t, "redis://127.0.0.1:1?read_timeout=-1"); s.Budget() != 0 {
		t.Fatalf("read_timeout=-1 (no timeout asked for): budget %s, want none", s.Budget())
	}
}

// TestStalledRedisIsUnavailable: against a Redis that accepts and never
// answers, every store call fails with ErrUnavailable (503 upstream)
// instead of hanging; and a request budget (WithBudget) bounds a sequence
// of calls as a whole: once it has run out, further calls fail at once,
// without opening another connection.
func TestStalledRedisIsUnavailable(t *testing.T) {
	stalled := redistest.StartStalled(t)
	s := openLazy(t, stalled.URL)
	now := time.Now()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"ping", s.Ping},
		{"servers", func(ctx context.Context) error { _, err := s.Servers(ctx); return err }},
		{"history", func(ctx context.Context) error {
			_, err := s.ServerMetrics(ctx, "web-1", metric.StandardPeriods[0], now)
			return err
		}},
		{"latest", func(ctx context.Context) error { _, err := s.LatestServer(ctx, "web-1"); return err }},
		{"host key", func(ctx context.Context) error { _, err := s.HostKey(ctx, "web-1"); return err }},
		{"ingest", func(ctx context.Context) error {
			_, err := s.Ingest(ctx, "web-1", []metric.Sample{sample(now.Truncate(10*time.Second), 5)})
			return err
		}},
	}
	ctx := WithBudget(context.Background())
	start := time.Now()
	for _, c := range calls {
		if err := c.call(ctx); !errors.Is(err, metric.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", c.name, err)
		}
	}
	// Six calls of one request: one budget (2.5 s) in all, where each
	// call alone could take it. Generous; only a per-call budget fails.
	if d := time.Since(start); d > 3*s.Budget() {
		t.Errorf("six calls under one budget took %s (budget %s)", d, s.Budget())
	}
	dialed := stalled.Accepted()
	for _, c := range calls {
		if err := c.call(ctx); !errors.Is(err, metric.ErrUnavailable) {
			t.Errorf("%s after the budget: %v, want ErrUnavailable", c.name, err)
		}
	}
	if n := stalled.Accepted(); n != dialed {
		t.Errorf("calls after the budget ran out opened %d connections", n-dialed)
	}
}

// TestFullRedisIsUnavailable: a Redis at maxmemory with noeviction refuses
// the ingest; that is ErrUnavailable (503 + Retry-After, the reporter keeps
// the batch), not an internal error, and the same batch is stored once
// memory is raised.
func TestFullRedisIsUnavailable(t *testing.T) {
	srv := redistest.StartServer(t)
	s := openLazy(t, srv.URL)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Truncate(10 * time.Second)
	batch := []metric.Sample{sample(at.Add(-10*time.Second), 5), sample(at, 6)}
	_, err := s.Ingest(ctx, "web-1", batch)
	var me *metric.Error
	if !errors.Is(err, metric.ErrUnavailable) || !errors.As(err, &me) || !strings.Contains(me.Msg, "out of memory") {
		t.Fatalf("full Redis: %v, want ErrUnavailable (out of memory)", err)
	}
	if err := admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Ingest(ctx, "web-1", batch)
	if err != nil || res.Accepted != 2 {
		t.Fatalf("after raising maxmemory: %+v %v", res, err)
	}
}

// TestRedisURLNeverShown: no error of Open quotes the password, whatever
// is wrong with the URL, including an unencoded # ? % or / in it.
func TestRedisURLNeverShown(t *testing.T) {
	for _, u := range []string{
		"redis://:pa?ss-s3cr3t@127.0.0.1:1",
		"redis://:p#ss-s3cr3t@127.0.0.1:1",
		"redis://:pa%ss-s3cr3t@127.0.0.1:1",
		"redis://:pa/ss-s3cr3t@127.0.0.1:1",
		"redis://user:s3cr3t@127.0.0.1:1/x",
		"redis://user:s3cr3t@127.0.0.1:1?dial_timeout=zz",
		"redis://:s3cr3t@127.0.0.1:1,127.0.0.1:2/3",
		"redis://:s3cr3t@127.0.0.1:1/2,127.0.0.1:2",
	} {
		cfg := DefaultConfig()
		cfg.URL = u
		_, err := Open(context.Background(), cfg, nil)
		if err == nil {
			t.Errorf("%s: no error", RedactURL(u))
			continue
		}
		for _, frag := range []string{"s3cr3t", "pa?", "p#", "pa%", "pa/", "ss-"} {
			if strings.Contains(err.Error(), frag) {
				t.Errorf("error shows %q of the password: %v", frag, err)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://127.0.0.1:6379":              "redis://127.0.0.1:6379",
		"redis://:tok@a:6379,b:6379":          "redis://:xxxxx@a:6379,b:6379",
		"rediss://user:p%23w@h:6380/1":        "rediss://user:xxxxx@h:6380/1",
		"redis://:p#ss@h:6379":                "redis://[redacted]@h:6379",
		"redis://u:a?b@c@h:6379":              "redis://[redacted]@h:6379",
		"a:1, redis://:x@b:2":                 "a:1,redis://:xxxxx@b:2",
		"redis://:s3cr3t@h:1?read_timeout=2s": "redis://:xxxxx@h:1?read_timeout=2s",
		"redis://:s3%cr3t@h:1":                "redis://[redacted]@h:1",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBudgetBoundsStallsNotProgress: the request budget is time without an
// answer. A request whose commands Redis keeps answering goes on past the
// budget in all (a heavy batch stored chunk by chunk must not fail at the
// same chunk on every retry); one that waits on a silent Redis does not.
func TestBudgetBoundsStallsNotProgress(t *testing.T) {
	srv := redistest.StartServer(t)
	// read_timeout 200ms: a budget of 400 ms, which the loop below outlasts
	// three times over while every command is answered at once.
	s := openLazy(t, srv.URL+"?read_timeout=200ms")
	ctx := WithBudget(context.Background())
	start := time.Now()
	for i := 0; time.Since(start) < 3*s.Budget(); i++ {
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("ping %d, %s into the request: %v", i, time.Since(start), err)
		}
		time.Sleep(s.Budget() / 8)
	}
}

// TestBudgetCountsRedisNotTheHandler: the handler's own work between round
// trips is not Redis's silence, while all of a request's Redis work still
// ends within four budgets, and before the request's own deadline with
// time left to answer.
func TestBudgetCountsRedisNotTheHandler(t *testing.T) {
	srv := redistest.StartServer(t)
	s := openLazy(t, srv.URL+"?read_timeout=200ms") // budget 400 ms
	ctx := WithBudget(context.Background())
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(s.Budget() * 3 / 2) // decoding a large batch, say
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("a command after the handler's own work: %v", err)
	}

	// Redis keeps answering, and the request keeps asking: cut off.
	ctx = WithBudget(context.Background())
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 10*s.Budget() {
		err = s.Ping(ctx)
		time.Sleep(s.Budget() / 8)
	}
	if !errors.Is(err, metric.ErrUnavailable) {
		t.Fatalf("a request that never stops asking: %v, want ErrUnavailable", err)
	}

	// Under a request deadline (Lambda's), the work ends requestMargin
	// before it.
	outer, cancel := context.WithTimeout(context.Background(), requestMargin+s.Budget())
	defer cancel()
	ctx = WithBudget(outer)
	err = nil
	for err == nil && outer.Err() == nil {
		err = s.Ping(ctx)
		time.Sleep(s.Budget() / 8)
	}
	if !errors.Is(err, metric.ErrUnavailable) || outer.Err() != nil {
		t.Fatalf("under a deadline: %v (request context: %v), want ErrUnavailable before the deadline", err, outer.Err())
	}
}
