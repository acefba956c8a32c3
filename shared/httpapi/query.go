package httpapi

import (
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// QueryDeps are what the query handler needs.
type QueryDeps struct {
	Store    metric.Store
	Verifier *auth.Verifier
	Logger   *slog.Logger
	// Now is the end of every history window.
	Now func() time.Time
	// Alerts serves /api/alerts…; nil answers them 503 (not configured).
	Alerts *AlertDeps
}

type query struct {
	QueryDeps
}

// NewQuery returns the query function's handler: every REST route of
// Routes() whose Function is "query". Each route but /api/healthz needs a
// user token (Authorization: Bearer, or ?access_token= for clients that
// cannot set headers) whose "servers" claim covers what is read; scope is
// checked before the store is asked, so a 404 never reveals to a token what
// it may not read.
func NewQuery(d QueryDeps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	q := &query{d}
	handlers := map[string]http.HandlerFunc{
		"GET /api/servers":                                  q.authed(q.servers),
		"GET /api/servers/{id}/metrics":                     q.authed(q.serverMetrics),
		"GET /api/servers/{id}/metrics/latest":              q.authed(q.serverLatest),
		"GET /api/instances/{id}/monitoring/metrics":        q.authed(q.instanceMetrics),
		"GET /api/instances/{id}/monitoring/metrics/latest": q.authed(q.instanceLatest),
		"GET /api/healthz":                                  q.healthz,
	}
	maps.Copy(handlers, q.alertHandlers())
	return newMux(FunctionQuery, handlers, d.Logger)
}

// authed verifies the request's token and passes its claims on; a handler
// returns the value to send with 200, or an error for WriteError.
func (q *query) authed(h func(r *http.Request, c *auth.Claims) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := Authenticate(r, q.Verifier)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vitals"`)
			WriteError(w, r, q.Logger, err)
			return
		}
		v, err := h(r, c)
		if err != nil {
			WriteError(w, r, q.Logger, err)
			return
		}
		WriteJSON(w, http.StatusOK, v)
	}
}

// metricsPage is the history response of both series kinds, as in oCore.
type metricsPage[T any] struct {
	Count   int    `json:"count"`
	Metrics []T    `json:"metrics"`
	Period  string `json:"period"`
}

func page[T any](ms []T, p metric.Period) metricsPage[T] {
	if ms == nil {
		ms = []T{} // oCore clients expect an array, never null
	}
	return metricsPage[T]{Count: len(ms), Metrics: ms, Period: p.Name}
}

// serverID validates the {id} path value and the token's scope over it.
func serverID(r *http.Request, c *auth.Claims) (string, error) {
	id := r.PathValue("id")
	if err := metric.CheckServerID(id); err != nil {
		return "", err
	}
	return id, c.CheckRead(id)
}

func (q *query) period(r *http.Request) (metric.Period, error) {
	return metric.ParsePeriod(r.URL.Query().Get("period"), q.Store.Periods())
}

func (q *query) serverMetrics(r *http.Request, c *auth.Claims) (any, error) {
	id, err := serverID(r, c)
	if err != nil {
		return nil, err
	}
	p, err := q.period(r)
	if err != nil {
		return nil, err
	}
	ms, err := q.Store.ServerMetrics(r.Context(), id, p, q.Now())
	if err != nil {
		return nil, err
	}
	return page(ms, p), nil
}

func (q *query) serverLatest(r *http.Request, c *auth.Claims) (any, error) {
	id, err := serverID(r, c)
	if err != nil {
		return nil, err
	}
	m, err := q.Store.LatestServer(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// instanceID validates the {id} path value and the token's scope over
// the instance (see ReadInstance).
func (q *query) instanceID(r *http.Request, c *auth.Claims) (string, error) {
	info, err := ReadInstance(r.Context(), q.Store, c, r.PathValue("id"))
	return info.ID, err
}

func (q *query) instanceMetrics(r *http.Request, c *auth.Claims) (any, error) {
	id, err := q.instanceID(r, c)
	if err != nil {
		return nil, err
	}
	p, err := q.period(r)
	if err != nil {
		return nil, err
	}
	ms, err := q.Store.InstanceMetrics(r.Context(), id, p, q.Now())
	if err != nil {
		return nil, err
	}
	return page(ms, p), nil
}

func (q *query) instanceLatest(r *http.Request, c *auth.Claims) (any, error) {
	id, err := q.instanceID(r, c)
	if err != nil {
		return nil, err
	}
	m, err := q.Store.LatestInstance(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return m, nil
}

type serversPage struct {
	Servers []metric.ServerInfo `json:"servers"`
}

func (q *query) servers(r *http.Request, c *auth.Claims) (any, error) {
	all, err := q.Store.Servers(r.Context())
	if err != nil {
		return nil, err
	}
	out := serversPage{Servers: []metric.ServerInfo{}}
	for _, s := range all {
		if !c.CanRead(s.ID) {
			continue
		}
		if s.Instances == nil {
			s.Instances = []metric.InstanceInfo{}
		}
		out.Servers = append(out.Servers, s)
	}
	return out, nil
}

type health struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// healthz needs no token: load balancers and uptime checks call it.
func (q *query) healthz(w http.ResponseWriter, r *http.Request) {
	if err := q.Store.Ping(r.Context()); err != nil {
		q.Logger.Warn("health check failed", "err", err)
		msg := "store unavailable"
		var me *metric.Error
		if errors.As(err, &me) && me.Msg != "" {
			msg = me.Msg
		}
		w.Header().Set("Retry-After", RetryAfterSeconds)
		WriteJSON(w, http.StatusServiceUnavailable, health{Status: "unavailable", Error: msg})
		return
	}
	WriteJSON(w, http.StatusOK, health{Status: "ok"})
}
