package streamer

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
)

// sseClient is one event stream. The handler goroutine is its writer; the
// hub hands it frames through a bounded channel and drops the stream when
// the channel is full.
type sseClient struct {
	frames chan *frame
	slow   chan struct{} // closed when the client fell behind

	mu       sync.Mutex
	lastAt   int64
	slowOnce sync.Once
}

func (c *sseClient) deliver(f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.at <= c.lastAt {
		return
	}
	select {
	case c.frames <- f:
		c.lastAt = f.at
	default:
		c.slowOnce.Do(func() { close(c.slow) })
	}
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
	s.stream(w, r, claims, kindServer, id)
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
	s.stream(w, r, claims, kindInstance, info.ID)
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
// stream starts when there is none), then every new sample, the latest
// again after SSEInterval without one, and heartbeat comments. It ends when
// the client leaves, the token expires, the client falls behind, or the
// server shuts down.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, claims *auth.Claims, k kind, id string) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	first, err := s.hub.latest(ctx, k, id)
	cancel()
	if err != nil {
		s.sseError(w, r, err)
		return
	}
	c := &sseClient{frames: make(chan *frame, s.cfg.SendQueue), slow: make(chan struct{})}
	if !s.register(nil, c) {
		w.Header().Set("Retry-After", httpapi.RetryAfterSeconds)
		writeError(w, http.StatusServiceUnavailable, "server shutting down")
		return
	}
	defer s.unregister(nil, c)
	s.stats.sseOpened.Add(1)
	s.stats.sseOpen.Add(1)
	defer s.stats.sseOpen.Add(-1)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("Connection", "keep-alive")
	// nginx would otherwise buffer the stream and deliver it in lumps.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		if err := rc.Flush(); err != nil {
			return false
		}
		s.stats.bytesOut.Add(int64(len(b)))
		return true
	}
	retry := "retry: " + strconv.FormatInt(s.cfg.SSERetry.Milliseconds(), 10) + "\n"
	c.lastAt = first.at
	if !write(append([]byte(retry), first.sse...)) {
		return
	}
	s.stats.messagesOut.Add(1)
	last := first

	t := s.hub.join(k, id, c)
	defer s.hub.leave(t, c)
	if f := t.last.Load(); f != nil {
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
		case f := <-c.frames:
			if !write(f.sse) {
				return
			}
			s.stats.messagesOut.Add(1)
			last = f
			resend.Reset(s.cfg.SSEInterval)
		case <-resend.C:
			// The seed's cadence: the latest every 10 s even without news.
			if !write(last.sse) {
				return
			}
			s.stats.messagesOut.Add(1)
			resend.Reset(s.cfg.SSEInterval)
		case <-heartbeat.C:
			if !write([]byte(": heartbeat\n\n")) {
				return
			}
		case <-expired:
			_ = write([]byte("event: expired\ndata: {\"error\":\"token expired\"}\n\n"))
			return
		case <-c.slow:
			s.stats.slowDropped.Add(1)
			s.log.Info("closing slow SSE client: send queue full", "queue", s.cfg.SendQueue)
			return
		case <-s.done:
			_ = write([]byte(": server shutting down\n\n"))
			return
		case <-r.Context().Done():
			return
		}
	}
}
