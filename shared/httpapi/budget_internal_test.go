package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// TestBudget: the decode budget grants in arrival order, bounds the wait
// with ErrUnavailable (503 + Retry-After), lets a request bigger than the
// whole budget run alone, and gives everything back.
func TestBudget(t *testing.T) {
	b := newBudget(10)
	ctx := context.Background()
	relA, err := b.acquire(ctx, 8, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Spent: a second request times out as unavailable.
	if _, err := b.acquire(ctx, 5, 10*time.Millisecond); !errors.Is(err, metric.ErrUnavailable) {
		t.Fatalf("acquire while spent: %v, want ErrUnavailable", err)
	}
	if b.tryAcquire(3) {
		t.Fatal("tryAcquire beyond the budget succeeded")
	}
	// A waiter is granted when A releases; a later small request does not
	// overtake it.
	got := make(chan func(), 1)
	go func() {
		rel, err := b.acquire(ctx, 5, time.Minute)
		if err != nil {
			t.Error(err)
		}
		got <- rel
	}()
	for {
		b.mu.Lock()
		n := len(b.waiters)
		b.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if b.tryAcquire(1) {
		t.Fatal("tryAcquire overtook a waiter")
	}
	relA()
	relB := <-got
	// Bigger than the whole budget: clamped, so it runs once alone.
	if _, err := b.acquire(ctx, 100, 10*time.Millisecond); !errors.Is(err, metric.ErrUnavailable) {
		t.Fatalf("huge acquire while B holds 5: %v", err)
	}
	relB()
	relC, err := b.acquire(ctx, 100, time.Second)
	if err != nil {
		t.Fatalf("huge acquire on an idle budget: %v", err)
	}
	relC()
	if b.used != 0 || len(b.waiters) != 0 {
		t.Fatalf("budget not returned: used %d, %d waiters", b.used, len(b.waiters))
	}
}
