package redisstore

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// A request budget bounds how long one request may wait on Redis without
// an answer: a handler that makes several round trips (a host key lookup,
// then the ingest pipeline) must still answer, or fail with ErrUnavailable
// (503 + Retry-After), within the budget when Redis stops answering, not
// within a budget per round trip.
//
// A command that starts while none is outstanding gets the whole budget,
// so time the handler spends on its own work between round trips
// (decoding a large batch, waiting for memory) is not counted as Redis's
// silence; one that starts beside an outstanding command shares its
// deadline, and an answer moves that deadline on. Once a command goes
// unanswered the budget is spent: every later command of the request fails
// at once instead of waiting again. A heavy batch stored in several chunks
// therefore goes on while Redis answers each one.
//
// A slow Redis that keeps answering is bounded too: all of a request's
// Redis work ends by maxRequestBudgets budgets after its first command,
// and at least requestMargin before the request's own deadline (the Lambda
// invocation's), so the handler still has time to answer 503 instead of
// being killed by the runtime.
type requestBudget struct {
	mu          sync.Mutex
	deadline    time.Time // of the outstanding commands
	hard        time.Time // of the whole request; zero until its first command
	outstanding int
	spent       bool
}

const (
	maxRequestBudgets = 4
	requestMargin     = time.Second
)

// start returns the deadline of a command that starts now; outer is the
// request context's own deadline, if any.
func (b *requestBudget) start(d time.Duration, outer time.Time, hasOuter bool) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if b.hard.IsZero() {
		b.hard = now.Add(maxRequestBudgets * d)
		if hasOuter && outer.Add(-requestMargin).Before(b.hard) {
			b.hard = outer.Add(-requestMargin)
		}
	}
	if !b.spent && b.outstanding == 0 {
		b.deadline = now.Add(d)
	}
	b.outstanding++
	if b.hard.Before(b.deadline) {
		return b.hard
	}
	return b.deadline
}

// done ends a command: an answer moves the deadline of the others on; no
// answer spends the budget.
func (b *requestBudget) done(d time.Duration, answered bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.outstanding--
	switch {
	case !answered:
		b.spent = true
	case !b.spent:
		b.deadline = time.Now().Add(d)
	}
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

// Budget is how long one request may wait on Redis without an answer:
// DefaultRequestBudget, or twice the read timeout the URL sets; 0 means
// unbounded (a URL with read_timeout=-1). All of a request's Redis work
// ends within four budgets.
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
	outer, hasOuter := ctx.Deadline()
	return context.WithDeadline(ctx, b.start(s.budget, outer, hasOuter))
}

// answered ends a command issued with ctx in its request's budget (see
// requestBudget). An error reply (a Lua error, redis.Nil) is an answer
// too; a timeout or a broken connection is not.
func (s *Store) answered(ctx context.Context, err error) {
	if b, ok := ctx.Value(budgetKey{}).(*requestBudget); ok && s.budget > 0 {
		b.done(s.budget, err == nil || isRedisError(err))
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
