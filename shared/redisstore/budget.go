package redisstore

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A request budget bounds all the Redis work of one request as a whole: a
// handler that makes several round trips (a host key lookup, then the
// ingest pipeline) must still answer, or fail with ErrUnavailable (503 +
// Retry-After), within the budget when Redis stops answering, not within a
// budget per round trip.
//
// The clock starts at the request's first Redis command, not when the
// request arrives, so a large ingest body on a slow uplink is not counted
// against it (the server's body bound covers that).
type requestBudget struct {
	once     sync.Once
	deadline time.Time
}

type budgetKey struct{}

// WithBudget returns ctx carrying a new request budget: every command of
// this store issued with ctx, or a context derived from it, shares it.
// Bound does this per HTTP request; code outside a request does not need
// to (each command then gets a budget of its own).
func WithBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, budgetKey{}, &requestBudget{})
}

// Bound gives every request through h its own request budget (WithBudget).
// Every server and Lambda handler that reads or writes through the store
// is wrapped in it. A long-lived handler (an SSE stream) must use contexts
// of its own for Redis calls made after its first seconds, as the streamer
// does, since the budget of its request has run out by then.
func (s *Store) Bound(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(WithBudget(r.Context())))
	})
}

// Budget is how long one request may spend on Redis: DefaultRequestBudget,
// or twice the read timeout the URL sets; 0 means unbounded (a URL with
// read_timeout=-1).
func (s *Store) Budget() time.Duration { return s.budget }

// limit derives the context one command or pipeline runs with: the
// request's budget if ctx has one, else a budget of its own; an earlier
// deadline of ctx still wins.
func (s *Store) limit(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.budget <= 0 {
		return ctx, func() {}
	}
	b, ok := ctx.Value(budgetKey{}).(*requestBudget)
	if !ok {
		return context.WithTimeout(ctx, s.budget)
	}
	b.once.Do(func() { b.deadline = time.Now().Add(s.budget) })
	return context.WithDeadline(ctx, b.deadline)
}

// budgetHook applies Store.limit to every command and pipeline (retries
// included: go-redis retries inside the hook chain). Pub/sub reads do not
// pass through it; the streamer bounds those itself.
type budgetHook struct{ s *Store }

func (h budgetHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h budgetHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, cancel := h.s.limit(ctx)
		defer cancel()
		return next(ctx, cmd)
	}
}

func (h budgetHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		ctx, cancel := h.s.limit(ctx)
		defer cancel()
		return next(ctx, cmds)
	}
}

var _ redis.Hook = budgetHook{}
