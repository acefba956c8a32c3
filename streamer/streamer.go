// Package streamer is the long-running live-update service: the TurboCore
// health WebSocket protocol at /api/health/ws, the oCore Server-Sent Events
// streams at /api/servers/{id}/metrics/stream and
// /api/instances/{id}/monitoring/metrics/stream, alert transitions
// ("subscribe alerts" on the WebSocket, SSE at /api/alerts/stream), and the
// embedded live-view web page at /.
//
// Samples reach it through Redis pub/sub (one channel per series, fed by the
// store's Ingest). A hub keeps exactly one Redis subscription per channel
// for the whole process, shared by every local client and reference-counted,
// turns each message into its wire frames once, and hands them to the
// clients without ever blocking: each client keeps only the newest pending
// frame per series, so a burst of samples coalesces to the newest state, and
// a client that does not read (a write blocked past WriteTimeout) is dropped
// instead of stalling others.
// It cannot be a Lambda function: it holds connections open.
package streamer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Config tunes the streamer. The zero value is usable: every field has a
// default (see DefaultConfig).
type Config struct {
	// AuthTimeout is how long a WebSocket may stay open without a
	// successful "auth" command. Default 10s.
	AuthTimeout time.Duration
	// PingInterval is how often an idle authenticated WebSocket is pinged;
	// a peer that does not answer within PingTimeout is closed. Defaults
	// 30s and 10s.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// WriteTimeout bounds one write to a client; a client that cannot take
	// a frame in this time does not read and is dropped (counted in
	// slowClientsDropped). It is the only measure of a slow client: a
	// burst of samples never drops one, it coalesces. Default 10s.
	WriteTimeout time.Duration
	// ReadLimit is the largest WebSocket message accepted from a client;
	// larger ones close the socket with 1009 (message too big). Commands
	// are short; the limit leaves room for a JWT with a long server list.
	// Default 16 KiB.
	ReadLimit int64
	// SendQueue is ignored. It was how many frames could wait for one
	// client before the client was dropped as slow, which dropped clients
	// that were reading during a burst of samples. A client now keeps only
	// the newest pending frame per series, and WriteTimeout alone decides
	// that a client is slow.
	//
	// Deprecated: pending frames coalesce; use WriteTimeout.
	SendQueue int
	// SSEInterval is the longest gap between two SSE events: the latest
	// metric is sent again when no new sample came (the oCore seed's 10
	// seconds). Default 10s.
	SSEInterval time.Duration
	// SSEHeartbeat is the period of ": heartbeat" comment lines that keep
	// proxies from closing idle streams. Default 15s.
	SSEHeartbeat time.Duration
	// SSERetry is the reconnection delay suggested to EventSource clients
	// with the "retry:" field. Default 3s.
	SSERetry time.Duration
	// UnsubscribeDelay is how long a Redis channel stays subscribed after
	// its last local client left, so a page reload does not churn
	// SUBSCRIBE/UNSUBSCRIBE. Default 5s.
	UnsubscribeDelay time.Duration
	// PubSubBuffer is the go-redis message channel size (WithChannelSize).
	// The hub never blocks while delivering, so the buffer only absorbs
	// bursts such as a backlog of samples flushed after an outage.
	// Default 4096.
	PubSubBuffer int
	// PubSubSendTimeout is how long go-redis waits on a full message
	// channel before dropping a message (WithChannelSendTimeout). Kept
	// short: blocking longer would stop go-redis reading its socket and
	// make Redis buffer (and eventually kill) the subscription for every
	// client, while a dropped sample is healed by the next one.
	// Default 1s.
	PubSubSendTimeout time.Duration
	// OriginPatterns lists extra browser origins (host patterns, see
	// websocket.AcceptOptions) allowed to open the WebSocket. Same-origin
	// pages and non-browser clients are always allowed.
	OriginPatterns []string
	// APIBase is the base URL of the REST API for the live-view page; ""
	// means the page's own origin (localdev, or a proxy routing /api/ to
	// the query function).
	APIBase string
}

// DefaultConfig returns the defaults the zero Config stands for.
func DefaultConfig() Config {
	return Config{
		AuthTimeout:       10 * time.Second,
		PingInterval:      30 * time.Second,
		PingTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		ReadLimit:         16 << 10,
		SSEInterval:       10 * time.Second,
		SSEHeartbeat:      15 * time.Second,
		SSERetry:          3 * time.Second,
		UnsubscribeDelay:  5 * time.Second,
		PubSubBuffer:      4096,
		PubSubSendTimeout: time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	setDur(&c.AuthTimeout, d.AuthTimeout)
	setDur(&c.PingInterval, d.PingInterval)
	setDur(&c.PingTimeout, d.PingTimeout)
	setDur(&c.WriteTimeout, d.WriteTimeout)
	setDur(&c.SSEInterval, d.SSEInterval)
	setDur(&c.SSEHeartbeat, d.SSEHeartbeat)
	setDur(&c.SSERetry, d.SSERetry)
	setDur(&c.UnsubscribeDelay, d.UnsubscribeDelay)
	setDur(&c.PubSubSendTimeout, d.PubSubSendTimeout)
	if c.ReadLimit <= 0 {
		c.ReadLimit = d.ReadLimit
	}
	if c.PubSubBuffer <= 0 {
		c.PubSubBuffer = d.PubSubBuffer
	}
	return c
}

// Channels names the pub/sub channels the store publishes on
// (*redisstore.Store implements it).
type Channels interface {
	ServerChannel(serverID string) string
	InstanceChannel(instanceID string) string
}

// Deps are the streamer's collaborators.
type Deps struct {
	// Store answers latest metrics, snapshots, instance lookups and the
	// server list.
	Store metric.Store
	// Client is used only for SUBSCRIBE (one pub/sub connection).
	Client redis.UniversalClient
	// Channels maps series to channel names.
	Channels Channels
	// Verifier checks user tokens.
	Verifier *auth.Verifier
	// Alerts, when set, feeds "subscribe alerts" and GET
	// /api/alerts/stream (*alertstore.Store); nil answers both with 503
	// "alerting is not configured".
	Alerts AlertSource
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is a running streamer. Create it with New, serve Handler, and call
// Shutdown once at the end. Its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	store    metric.Store
	verifier *auth.Verifier
	log      *slog.Logger
	now      func() time.Time
	hub      *hub
	host     *hostSampler
	started  time.Time
	handler  http.Handler

	stats counters

	mu       sync.Mutex
	closing  bool
	wsConns  map[*wsClient]struct{}
	sseConns map[*sseClient]struct{}
	conns    sync.WaitGroup // every open WebSocket and SSE handler
	done     chan struct{}  // closed by Shutdown: SSE handlers return
}

// New builds a Server and starts its Redis subscription hub.
func New(deps Deps, cfg Config) (*Server, error) {
	switch {
	case deps.Store == nil:
		return nil, errors.New("streamer: a store is required")
	case deps.Client == nil:
		return nil, errors.New("streamer: a redis client is required")
	case deps.Channels == nil:
		return nil, errors.New("streamer: channel names are required")
	case deps.Verifier == nil:
		return nil, errors.New("streamer: a token verifier is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:      cfg,
		store:    deps.Store,
		verifier: deps.Verifier,
		log:      deps.Logger,
		now:      deps.Now,
		host:     newHostSampler(),
		started:  deps.Now(),
		wsConns:  map[*wsClient]struct{}{},
		sseConns: map[*sseClient]struct{}{},
		done:     make(chan struct{}),
	}
	s.hub = newHub(deps.Client, deps.Channels, deps.Store, deps.Alerts, &s.stats, cfg, deps.Logger, deps.Now)
	s.handler = s.routes()
	return s, nil
}

// Handler serves GET /api/health/ws, GET /api/servers/{id}/metrics/stream,
// GET /api/instances/{id}/monitoring/metrics/stream, GET /api/alerts/stream,
// GET /healthz, and the live-view page at / with its assets.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health/ws", s.serveWS)
	mux.HandleFunc("GET /api/servers/{id}/metrics/stream", s.serveServerSSE)
	mux.HandleFunc("GET /api/instances/{id}/monitoring/metrics/stream", s.serveInstanceSSE)
	mux.HandleFunc("GET /api/alerts/stream", s.serveAlertsSSE)
	mux.HandleFunc("GET /healthz", s.serveHealthz)
	mux.HandleFunc("GET /config.json", s.serveWebConfig)
	mux.Handle("GET /", webHandler(s.log, s.cfg.APIBase))
	// Anything else is a JSON 404/405 worded as by the REST API.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.stats.requests.Add(1)
		if _, pattern := mux.Handler(r); pattern == "" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead && mux405(mux, r) {
				httpapi.WriteError(w, r, s.log, httpapi.MethodNotAllowed(r.Method, "GET, HEAD"))
				return
			}
			httpapi.WriteError(w, r, s.log, httpapi.NoRoute(r.URL.Path))
			return
		}
		mux.ServeHTTP(w, r) // matches again, filling r.PathValue
	})
}

// mux405 reports whether r's path exists for GET, i.e. only the method is
// wrong.
func mux405(mux *http.ServeMux, r *http.Request) bool {
	r2 := r.Clone(r.Context())
	r2.Method = http.MethodGet
	_, pattern := mux.Handler(r2)
	return pattern != ""
}

// serveHealthz answers 200 {"status":"ok"} when Redis answers, else 503.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("healthz: redis ping failed", "err", err)
		w.Header().Set("Retry-After", httpapi.RetryAfterSeconds)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "redis unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) serveWebConfig(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, map[string]string{"apiBase": s.cfg.APIBase})
}

// Shutdown stops accepting streams, closes every WebSocket with 1001
// (going away) and a reason, ends every SSE stream with a final comment,
// and closes the Redis subscription. It waits for the handlers to return
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.done)
	ws := make([]*wsClient, 0, len(s.wsConns))
	for c := range s.wsConns {
		ws = append(ws, c)
	}
	s.mu.Unlock()

	for _, c := range ws {
		go c.closeWith(statusGoingAway, "server shutting down")
	}
	waited := make(chan struct{})
	go func() { s.conns.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("streamer shutdown: %w", ctx.Err())
	}
	s.hub.close()
	return err
}

// register tracks a connection for Shutdown; false when shutting down.
func (s *Server) register(ws *wsClient, sse *sseClient) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	if ws != nil {
		s.wsConns[ws] = struct{}{}
	}
	if sse != nil {
		s.sseConns[sse] = struct{}{}
	}
	s.conns.Add(1)
	return true
}

func (s *Server) unregister(ws *wsClient, sse *sseClient) {
	s.mu.Lock()
	if ws != nil {
		delete(s.wsConns, ws)
	}
	if sse != nil {
		delete(s.sseConns, sse)
	}
	s.mu.Unlock()
	s.conns.Done()
}

// counters are the process-wide traffic figures of the "stats" command.
type counters struct {
	requests    atomic.Int64 // HTTP requests (upgrades and streams included)
	wsOpened    atomic.Int64
	wsOpen      atomic.Int64
	sseOpened   atomic.Int64
	sseOpen     atomic.Int64
	messagesIn  atomic.Int64 // WebSocket messages from clients
	messagesOut atomic.Int64 // WebSocket messages and SSE events sent
	bytesIn     atomic.Int64
	bytesOut    atomic.Int64
	redisIn     atomic.Int64 // pub/sub messages received
	slowDropped atomic.Int64 // clients closed for not reading (a write blocked past WriteTimeout)
	resubscribe atomic.Int64 // Redis (re)subscriptions confirmed after a reconnect
}

// Stats is the reply to the WebSocket "stats" command: what the process
// has served since it started (the TurboCore seed promises request and
// traffic figures).
type Stats struct {
	StartedAt        time.Time `json:"startedAt"`
	UptimeSeconds    int64     `json:"uptimeSeconds"`
	Requests         int64     `json:"requests"`
	Connections      int64     `json:"connections"`
	ConnectionsTotal int64     `json:"connectionsTotal"`
	SSEClients       int64     `json:"sseClients"`
	SSEClientsTotal  int64     `json:"sseClientsTotal"`
	MessagesIn       int64     `json:"messagesIn"`
	MessagesOut      int64     `json:"messagesOut"`
	BytesIn          int64     `json:"bytesIn"`
	BytesOut         int64     `json:"bytesOut"`
	RedisChannels    int       `json:"redisChannels"`
	RedisMessages    int64     `json:"redisMessages"`
	Resubscriptions  int64     `json:"resubscriptions"`
	SlowClientsDrops int64     `json:"slowClientsDropped"`
}

// Stats returns the current traffic figures.
func (s *Server) Stats() Stats {
	now := s.now()
	return Stats{
		StartedAt:        s.started.UTC(),
		UptimeSeconds:    int64(now.Sub(s.started) / time.Second),
		Requests:         s.stats.requests.Load(),
		Connections:      s.stats.wsOpen.Load(),
		ConnectionsTotal: s.stats.wsOpened.Load(),
		SSEClients:       s.stats.sseOpen.Load(),
		SSEClientsTotal:  s.stats.sseOpened.Load(),
		MessagesIn:       s.stats.messagesIn.Load(),
		MessagesOut:      s.stats.messagesOut.Load(),
		BytesIn:          s.stats.bytesIn.Load(),
		BytesOut:         s.stats.bytesOut.Load(),
		RedisChannels:    s.hub.channelCount(),
		RedisMessages:    s.stats.redisIn.Load(),
		Resubscriptions:  s.stats.resubscribe.Load(),
		SlowClientsDrops: s.stats.slowDropped.Load(),
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, status int, msg string) {
	httpapi.WriteJSON(w, status, map[string]string{"error": msg})
}

// clientMessage is the text a WebSocket client sees for err: exactly what
// httpapi.WriteError puts in a REST or SSE answer, so one failure reads the
// same on every transport. Like WriteError, it logs what the client is not
// told: an unavailable Redis as a warning, an internal error in full.
func (s *Server) clientMessage(err error, what string) string {
	status, msg := httpapi.ClientError(err)
	switch status {
	case http.StatusServiceUnavailable:
		s.log.Warn(what, "err", err)
	case http.StatusInternalServerError:
		s.log.Error(what, "err", err)
	}
	return msg
}
