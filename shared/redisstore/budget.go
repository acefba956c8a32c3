package redisstore

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A request budget bounds how long one request may wait on Redis without
// progress: a handler that makes several round trips (a host key lookup,
// then the ingest pipeline) must still answer, or fail with ErrUnavailable
// (503 + Retry-After), within the budget when Redis stops answering, not
// within a budget per round trip.
//
// The clock starts at the request's first Redis command, not when the
// request arrives, so a large ingest body on a slow uplink is not counted
// against it (the server's body bound covers that), and every command that
// succeeds starts it again: a stall is time without an answer. A heavy
// batch stored in several chunks therefore goes on while Redis answers
// each one, instead of failing at the same point on every retry; what a
// request may cost in all is bounded by its size (ingest's chunks) and by
// the server's write bound or the Lambda timeout.
type requestBudget struct {
	mu       sync.Mutex
	deadline time.Time
}

// start returns the deadline of the next command: the running one, or d
// from now if none runs yet.
func (b *requestBudget) start(d time.Duration) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deadline.IsZero() {
		b.deadline = time.Now().Add(d)
	}
	return b.deadline
}

// progress starts the clock again after a command Redis answered.
func (b *requestBudget) progress(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deadline = time.Now().Add(d)
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

// Budget is how long one request may wait on Redis without an answer: DefaultRequestBudget,
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
	return context.WithDeadline(ctx, b.start(s.budget))
}

// answered records that Redis answered a command issued with ctx, which
// starts its request's budget again (see requestBudget). An error reply
// (a Lua error, redis.Nil) is an answer too; a timeout or a broken
// connection is not.
func (s *Store) answered(ctx context.Context, err error) {
	if b, ok := ctx.Value(budgetKey{}).(*requestBudget); ok && s.budget > 0 && (err == nil || isRedisError(err)) {
		b.progress(s.budget)
	}
}

// budgetHook applies Store.limit to every command and pipeline (retries
// included: go-redis retries inside the hook chain). Pub/sub reads do not
// pass through it; the streamer bounds those itself.
type budgetHook struct{ s *Store }

func (h budgetHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h budgetHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		lctx, cancel := h.s.limit(ctx)
		defer cancel()
		err := next(lctx, cmd)
		h.s.answered(ctx, err)
		return err
	}
}

func (h budgetHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		lctx, cancel := h.s.limit(ctx)
		defer cancel()
		err := next(lctx, cmds)
		h.s.answered(ctx, err)
		return err
	}
}

var _ redis.Hook = budgetHook{}
