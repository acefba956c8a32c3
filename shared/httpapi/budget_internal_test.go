package httpapi

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// TestBudget: the decode budget grants heavy requests in arrival order,
// bounds the wait with ErrUnavailable (503 + Retry-After), lets a request
// bigger than the heavy lane run alone, refuses a second heavy request of
// one server at once, never makes a small request wait behind a heavy
// one, and gives everything back.
func TestBudget(t *testing.T) {
	// 20 bytes, requests over 2 are heavy, 4 kept for small ones: heavy
	// requests share 16.
	b := newBudget(20, 2, 4)
	ctx := context.Background()
	gA, err := b.acquire(ctx, "a", 12, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A second heavy request of a: refused without waiting.
	if _, err := b.acquire(ctx, "a", 3, time.Minute); !errors.Is(err, metric.ErrUnavailable) {
		t.Fatalf("second heavy request of one server: %v, want ErrUnavailable", err)
	}
	// The heavy lane is spent for b's 5: it times out as unavailable.
	if _, err := b.acquire(ctx, "b", 5, 10*time.Millisecond); !errors.Is(err, metric.ErrUnavailable) {
		t.Fatalf("heavy acquire while spent: %v, want ErrUnavailable", err)
	}
	if gA.more(5) {
		t.Fatal("more beyond the heavy lane succeeded")
	}
	// A heavy waiter (c) is granted when A releases ...
	got := make(chan *grant, 1)
	go func() {
		g, err := b.acquire(ctx, "c", 5, time.Minute)
		if err != nil {
			t.Error(err)
		}
		got <- g
	}()
	for {
		b.mu.Lock()
		n := len(b.heavyWaiters)
		b.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	// ... a later heavy request does not overtake it ...
	if _, err := b.acquire(ctx, "d", 3, 10*time.Millisecond); !errors.Is(err, metric.ErrUnavailable) {
		t.Fatalf("heavy acquire behind a waiter: %v", err)
	}
	// ... and small requests of anyone pass it, into the reserve too.
	var small []*grant
	for i := range 4 {
		g, err := b.acquire(ctx, "e", 2, 10*time.Millisecond)
		if err != nil {
			t.Fatalf("small request %d behind a heavy waiter: %v", i, err)
		}
		small = append(small, g)
	}
	// The reserve and the rest are spent now: a small one waits, and is
	// granted first when small ones give back.
	sg := make(chan *grant, 1)
	go func() {
		g, err := b.acquire(ctx, "f", 2, time.Minute)
		if err != nil {
			t.Error(err)
		}
		sg <- g
	}()
	small[0].release()
	small = append(small[1:], <-sg)
	gA.release()
	gC := <-got
	// Bigger than the heavy lane: clamped, so it runs once alone.
	if _, err := b.acquire(ctx, "g", 100, 10*time.Millisecond); !errors.Is(err, metric.ErrUnavailable) {
		t.Fatalf("huge acquire while C holds 5: %v", err)
	}
	gC.release()
	for _, g := range small {
		g.release()
	}
	gH, err := b.acquire(ctx, "h", 100, time.Second)
	if err != nil {
		t.Fatalf("huge acquire on an idle budget: %v", err)
	}
	gH.release()
	if b.used != 0 || b.heavyUsed != 0 || len(b.heavyWaiters)+len(b.smallWaiters) != 0 || len(b.heavyServers) != 0 {
		t.Fatalf("budget not returned: used %d heavy %d, waiters %d/%d, servers %v", b.used, b.heavyUsed, len(b.smallWaiters), len(b.heavyWaiters), b.heavyServers)
	}
}
