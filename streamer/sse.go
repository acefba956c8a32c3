package streamer

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
)

// sseClient is one event stream. The handler goroutine is its writer; the
// hub hands it frames without ever blocking: the newest not yet written is
// kept as pending (a backlog coalesces to the newest state) and notify wakes
// the writer. A stream that does not read is found by its write deadline,
// never by how many frames arrived.
type sseClient struct {
	notify chan struct{} // capacity 1: "pending has a frame"
	now    func() time.Time
	kind   kind
	owner  string // an instance stream's server, whose scope let it in

	mu      sync.Mutex
	lastAt  int64  // collectedAt of the newest frame accepted (pending or written)
	pending *frame // newest frame not yet written
	moved   bool   // the instance changed owner: the stream ends
}

func (c *sseClient) deliver(f *frame) {
	c.mu.Lock()
	if c.moved || !supersedes(c.lastAt, f.at, c.now) {
		c.mu.Unlock()
		return
	}
	if f.movedFrom(c.kind, c.owner) {
		// Access was checked against the old owner; a reconnect checks
		// again.
		c.moved, c.pending = true, nil
	} else {
		c.lastAt = f.at
		c.pending = f
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default: // the writer is already due to look
	}
}

// take returns the pending frame, if any, and clears it, and whether the
// instance changed owner.
func (c *sseClient) take() (*frame, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.pending
	c.pending = nil
	return f, c.moved
}

func (s *Server) serveServerSSE(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.sseAuth(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if err := metric.CheckServerID(id); err != nil {
		s.sseError(w, r, err)
		return
	}
	if err := claims.CheckRead(id); err != nil {
		s.sseError(w, r, err)
		return
	}
	s.stream(w, r, claims, kindServer, id, id)
}

func (s *Server) serveInstanceSSE(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.sseAuth(w, r)
	if !ok {
		return
	}
	// The REST rule: an unknown instance is 403 for a scoped token.
	info, err := httpapi.ReadInstance(r.Context(), s.store, claims, r.PathValue("id"))
	if err != nil {
		s.sseError(w, r, err)
		return
	}
	s.stream(w, r, claims, kindInstance, info.ID, info.ServerID)
}

// sseAuth verifies the token as the query function does: "Authorization:
// Bearer" or, because EventSource cannot set headers, ?access_token=.
func (s *Server) sseAuth(w http.ResponseWriter, r *http.Request) (*auth.Claims, bool) {
	claims, err := httpapi.Authenticate(r, s.verifier)
	if err != nil {
		challenge := `Bearer realm="vitals"`
		// RFC 6750 §3.1: name the error only when a token was presented.
		if r.Header.Get("Authorization") != "" || r.URL.Query().Get("access_token") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		s.sseError(w, r, err)
		return nil, false
	}
	return claims, true
}

func (s *Server) sseError(w http.ResponseWriter, r *http.Request, err error) {
	httpapi.WriteError(w, r, s.log, err)
}

// stream runs one SSE response: the latest metric at once (404 before the
// stream starts when there is none), then the newest sample whenever one
// comes (a burst coalesces to its newest), the latest again after
// SSEInterval without one, and heartbeat comments. It ends when the client
// leaves, the token expires, a write blocks longer than WriteTimeout (the
// client does not read), or the server shuts down.
//
// Event ids are this stream's own sequence, strictly increasing and never
// repeated (the metric's own "id", which two samples of one 10 s bucket
// share, stays in the data). A reconnecting EventSource sends the last one
// as Last-Event-ID; a numeric one continues the sequence after it, so the
// ids a page sees keep increasing across reconnects. There is no replay:
// the stream always starts from the latest metric, history is REST's job.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, claims *auth.Claims, k kind, id, owner string) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	first, err := s.hub.latest(ctx, k, id)
	cancel()
	if err == nil && first.movedFrom(k, owner) { // it moved since ReadInstance
		err = metric.Errorf(metric.ErrUnavailable, "instance %s changed owner; reconnect", id)
	}
	if err != nil {
		s.sseError(w, r, err)
		return
	}
	c := &sseClient{notify: make(chan struct{}, 1), now: s.now, kind: k, owner: owner}
	sw, done, ok := s.openSSE(w, c)
	if !ok {
		return
	}
	defer done()
	write := sw.write
	seq := lastEventID(r)
	var idBuf []byte
	event := func(prefix []byte, f *frame) bool {
		seq++
		idBuf = append(idBuf[:0], prefix...)
		idBuf = append(idBuf, "id: "...)
		idBuf = strconv.AppendUint(idBuf, seq, 10)
		idBuf = append(idBuf, '\n')
		if !write(idBuf, f.sse) {
			return false
		}
		s.stats.messagesOut.Add(1)
		return true
	}
	retry := "retry: " + strconv.FormatInt(s.cfg.SSERetry.Milliseconds(), 10) + "\n"
	c.lastAt = first.at
	if !event([]byte(retry), first) {
		return
	}
	last := first

	t := s.hub.join(k, id, c)
	defer s.hub.leave(t, c)
	if f := t.last.Load(); f != nil && !f.movedFrom(k, owner) {
		c.deliver(f) // newer than what we fetched, if a sample raced us
	}

	resend := time.NewTimer(s.cfg.SSEInterval)
	defer resend.Stop()
	heartbeat := time.NewTicker(s.cfg.SSEHeartbeat)
	defer heartbeat.Stop()
	var expired <-chan time.Time
	if claims.ExpiresAt != nil {
		exp := time.NewTimer(claims.ExpiresAt.Sub(s.now()))
		defer exp.Stop()
		expired = exp.C
	}
	for {
		select {
		case <-c.notify:
			f, moved := c.take()
			if moved {
				// The stream's own instance; a constant, so no path input
				// reaches the body.
				_ = write([]byte("event: moved\ndata: {\"error\":\"the instance changed owner; reconnect\"}\n\n"))
				return
			}
			if f == nil {
				continue
			}
			if !event(nil, f) {
				return
			}
			last = f
			resend.Reset(s.cfg.SSEInterval)
		case <-resend.C:
			// The seed's cadence: the latest every 10 s even without news.
			if !event(nil, last) {
				return
			}
			resend.Reset(s.cfg.SSEInterval)
		case <-heartbeat.C:
			if !write(sseHeartbeat) {
				return
			}
		case <-expired:
			_ = write(sseExpired)
			return
		case <-s.done:
			_ = write(sseShutdown)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// lastEventID is where a stream's event ids continue: after the client's
// Last-Event-ID when it is one of ours (a decimal number), else from 0.
func lastEventID(r *http.Request) uint64 {
	v := r.Header.Get("Last-Event-ID")
	if v == "" || len(v) > 19 {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > math.MaxInt64 {
		return 0
	}
	return n
}

// isTimeout reports whether a write failed on its deadline, i.e. the peer
// stopped reading (as opposed to having gone away).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// What every event stream sends besides its events: a heartbeat comment
// that keeps proxies open, the end of a token's validity, and shutdown.
var (
	sseHeartbeat = []byte(": heartbeat\n\n")
	sseExpired   = []byte("event: expired\ndata: {\"error\":\"token expired\"}\n\n")
	sseShutdown  = []byte(": server shutting down\n\n")
)

// sseWriter writes one event stream: each write is bounded by WriteTimeout,
// and a client that does not read within it is slow, counted and logged
// once when the stream ends.
type sseWriter struct {
	s    *Server
	w    http.ResponseWriter
	rc   *http.ResponseController
	slow bool
}

// openSSE registers an event stream (c is nil for one that follows no
// series), counts it and sends its headers; done undoes that when the
// stream ends. Not ok: the server is shutting down and has answered 503.
func (s *Server) openSSE(w http.ResponseWriter, c *sseClient) (sw *sseWriter, done func(), ok bool) {
	if !s.register(nil, c) {
		w.Header().Set("Retry-After", httpapi.RetryAfterSeconds)
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return nil, nil, false
	}
	s.stats.sseOpened.Add(1)
	s.stats.sseOpen.Add(1)
	sw = s.startSSE(w)
	return sw, func() {
		sw.end()
		s.stats.sseOpen.Add(-1)
		s.unregister(nil, c)
	}, true
}

// startSSE sends an event stream's headers.
func (s *Server) startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Connection", "keep-alive")
	// nginx would otherwise buffer the stream and deliver it in lumps.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{s: s, w: w, rc: http.NewResponseController(w)}
}

// write sends b and flushes it; false ends the stream.
func (sw *sseWriter) write(b ...[]byte) bool {
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.s.cfg.WriteTimeout))
	n := 0
	for _, p := range b {
		if _, err := sw.w.Write(p); err != nil { //nolint:gosec // G705: text/event-stream of JSON the store encoded, never HTML
			sw.slow = isTimeout(err)
			return false
		}
		n += len(p)
	}
	if err := sw.rc.Flush(); err != nil {
		sw.slow = isTimeout(err)
		return false
	}
	sw.s.stats.bytesOut.Add(int64(n))
	return true
}

// end counts and logs a stream that ended for a client not reading.
func (sw *sseWriter) end() {
	if sw.slow {
		sw.s.stats.slowDropped.Add(1)
		sw.s.log.Info("closing slow SSE client: not reading", "writeTimeout", sw.s.cfg.WriteTimeout)
	}
}
