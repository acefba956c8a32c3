package redistest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Stalled is a Redis that stopped answering: a loopback listener that
// accepts every connection and reads what it is sent, but never writes a
// byte, as a frozen (SIGSTOPped) or wedged Redis looks to a client. Tests
// use it to check that every request still answers within its bound.
type Stalled struct {
	// URL is a redis:// URL for it, without any timeout options, as the
	// README's own example is.
	URL string
	// Addr is host:port.
	Addr string

	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	closed   bool
	wg       sync.WaitGroup
}

// StartStalled starts a stalled Redis, closed at the end of the test.
func StartStalled(tb testing.TB) *Stalled {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Stalled{URL: "redis://" + ln.Addr().String(), Addr: ln.Addr().String(), ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				_ = c.Close()
				return
			}
			s.conns = append(s.conns, c)
			s.accepted++
			s.mu.Unlock()
			s.wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	tb.Cleanup(s.Close)
	return s
}

// Accepted is how many connections it has accepted so far.
func (s *Stalled) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Close stops accepting and closes every connection.
func (s *Stalled) Close() {
	_ = s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
	s.mu.Unlock()
	s.wg.Wait()
}
