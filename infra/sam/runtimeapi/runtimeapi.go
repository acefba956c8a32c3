// Package runtimeapi is a small local implementation of the AWS Lambda
// Runtime API (version 2018-06-01), enough to run a provided.al2023
// bootstrap binary outside AWS: the binary is started with
// AWS_LAMBDA_RUNTIME_API=<Addr()>, polls /invocation/next, and posts its
// answer to /invocation/{id}/response (or /error). Invoke queues one event
// and waits for that answer. The cold-start benchmark and the bootstrap
// tests use it; it listens on loopback only.
package runtimeapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vitals-dev/vitals/shared/httpserve"
)

const prefix = "/2018-06-01/runtime/"

// FunctionARN is what the fake runtime reports as the invoked function.
const FunctionARN = "arn:aws:lambda:eu-west-1:123456789012:function:vitals-local"

// Result is what the function posted for one invocation.
type Result struct {
	RequestID string
	// Body is the response payload, or the error document when Error.
	Body []byte
	// Error is true when the function posted to /error (a handler error
	// or panic) rather than /response.
	Error bool
	// At is when the post arrived.
	At time.Time
}

// Server is a running fake Runtime API. It is safe for concurrent use.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	next chan invocation
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	pending map[string]chan Result
	initErr []byte
	// firstPoll is when the function first asked for work, i.e. when its
	// initialisation (config, Redis connection) had finished.
	firstPoll time.Time
	seq       atomic.Int64
}

type invocation struct {
	id       string
	event    []byte
	deadline time.Time
}

// Start serves the Runtime API on a free loopback port.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		ln:      ln,
		next:    make(chan invocation),
		done:    make(chan struct{}),
		pending: map[string]chan Result{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+prefix+"invocation/next", s.serveNext)
	mux.HandleFunc("POST "+prefix+"invocation/{id}/response", s.serveResult(false))
	mux.HandleFunc("POST "+prefix+"invocation/{id}/error", s.serveResult(true))
	mux.HandleFunc("POST "+prefix+"init/error", s.serveInitError)
	s.srv = httpserve.NewServer(mux, nil)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the value for AWS_LAMBDA_RUNTIME_API (host:port, no scheme).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// FirstPoll is when the function first asked for an invocation (zero if it
// has not yet).
func (s *Server) FirstPoll() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstPoll
}

// Invoke hands event to the next poll of the function and waits for its
// answer. The function's deadline is timeout from now. An /init/error post,
// ctx ending or Close all end the wait with an error.
func (s *Server) Invoke(ctx context.Context, event []byte, timeout time.Duration) (Result, error) {
	inv := invocation{
		id:       "req-" + strconv.FormatInt(s.seq.Add(1), 10),
		event:    event,
		deadline: time.Now().Add(timeout),
	}
	ch := make(chan Result, 1)
	s.mu.Lock()
	s.pending[inv.id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.pending, inv.id)
		s.mu.Unlock()
	}()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	// Hand the invocation over, watching for an init failure meanwhile.
	for handed := false; !handed; {
		select {
		case s.next <- inv:
			handed = true
		case <-poll.C:
			if err := s.initError(); err != nil {
				return Result{}, err
			}
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-s.done:
			return Result{}, errors.New("runtime API closed")
		}
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-s.done:
		return Result{}, errors.New("runtime API closed")
	}
}

func (s *Server) initError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.initErr != nil {
		return fmt.Errorf("function failed to initialise: %s", s.initErr)
	}
	return nil
}

// Close stops serving and ends every poll and Invoke in progress.
func (s *Server) Close() error {
	s.once.Do(func() { close(s.done) })
	return s.srv.Close()
}

func (s *Server) serveNext(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.firstPoll.IsZero() {
		s.firstPoll = time.Now()
	}
	s.mu.Unlock()
	select {
	case inv := <-s.next:
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", FunctionARN)
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(inv.event)
	case <-r.Context().Done():
	case <-s.done:
		// A real runtime would freeze the process here; ours just hangs up.
		http.Error(w, "runtime API closed", http.StatusGone)
	}
}

func (s *Server) serveResult(isErr bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20)) // Lambda's response limit
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := r.PathValue("id")
		s.mu.Lock()
		ch := s.pending[id]
		s.mu.Unlock()
		if ch == nil {
			http.Error(w, `{"errorType":"InvalidRequestID"}`, http.StatusBadRequest)
			return
		}
		ch <- Result{RequestID: id, Body: body, Error: isErr, At: time.Now()}
		w.WriteHeader(http.StatusAccepted)
	}
}

func (s *Server) serveInitError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	s.initErr = body
	if len(s.initErr) == 0 {
		s.initErr = []byte("(no detail)")
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}
