package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// AlertSender checks channel URLs and sends messages; shared/notify
// implements it.
type AlertSender interface {
	// Check says why c cannot be sent to (ErrInvalid naming "url",
	// without the URL), or nil.
	Check(c alert.Channel) error
	// Send delivers m to c once. Its error never contains the URL.
	Send(ctx context.Context, c alert.Channel, m alert.Message) error
}

// AlertDeps are what the /api/alerts… routes need.
type AlertDeps struct {
	Store  alert.Store
	Sender AlertSender
}

// maxAlertBody bounds a rule, channel or silence body.
const maxAlertBody = alert.MaxBody

// Access, for every alert route:
//   - reading follows the token's servers claim: a scoped token sees only
//     alerts of servers it may read, and rules and silences whose every
//     selector is such a server (a glob may select servers it may not
//     read); channels show no credentials to anyone;
//   - changing anything needs the scope alerts:write, and a rule or
//     silence may only select servers the token may read.
func (q *query) alertHandlers() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/alerts":                       q.alertsAuthed(q.listAlerts),
		"GET /api/alerts/rules":                 q.alertsAuthed(q.listRules),
		"POST /api/alerts/rules":                q.alertsWrite(q.createRule),
		"GET /api/alerts/rules/{id}":            q.alertsAuthed(q.getRule),
		"PUT /api/alerts/rules/{id}":            q.alertsWrite(q.putRule),
		"DELETE /api/alerts/rules/{id}":         q.alertsWrite(q.deleteRule),
		"GET /api/alerts/channels":              q.alertsAuthed(q.listChannels),
		"POST /api/alerts/channels":             q.alertsWrite(q.createChannel),
		"DELETE /api/alerts/channels/{name}":    q.alertsWrite(q.deleteChannel),
		"POST /api/alerts/channels/{name}/test": q.alertsWrite(q.testChannel),
		"GET /api/alerts/silences":              q.alertsAuthed(q.listSilences),
		"POST /api/alerts/silences":             q.alertsWrite(q.createSilence),
		"DELETE /api/alerts/silences/{id}":      q.alertsWrite(q.deleteSilence),
		"GET /api/alerts/deliveries":            q.alertsAuthed(q.listDeliveries),
	}
}

// alertReply is a handler's answer: status and body (nil body: 204).
type alertReply struct {
	status int
	body   any
}

type alertHandler func(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error)

func (q *query) alertsAuthed(h alertHandler) http.HandlerFunc {
	return q.alertRoute(h, false)
}

func (q *query) alertsWrite(h alertHandler) http.HandlerFunc {
	return q.alertRoute(h, true)
}

func (q *query) alertRoute(h alertHandler, write bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := Authenticate(r, q.Verifier)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vitals"`)
			WriteError(w, r, q.Logger, err)
			return
		}
		if write {
			if err := c.CheckScope(auth.ScopeAlertsWrite); err != nil {
				WriteError(w, r, q.Logger, err)
				return
			}
		}
		if q.Alerts == nil || q.Alerts.Store == nil {
			WriteError(w, r, q.Logger, metric.Errorf(metric.ErrUnavailable, "alerting is not configured"))
			return
		}
		rep, err := h(r, c, q.Alerts)
		if err != nil {
			WriteError(w, r, q.Logger, err)
			return
		}
		if rep.body == nil {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(rep.status)
			return
		}
		WriteJSON(w, rep.status, rep.body)
	}
}

func ok(v any) (alertReply, error)      { return alertReply{http.StatusOK, v}, nil }
func created(v any) (alertReply, error) { return alertReply{http.StatusCreated, v}, nil }
func noContent() (alertReply, error)    { return alertReply{status: http.StatusNoContent}, nil }

func readAlertBody(r *http.Request) ([]byte, error) {
	return readLimited(r.Body, maxAlertBody, "body")
}

// ---- alerts ----

type alertsPage struct {
	Alerts []alert.Alert `json:"alerts"`
}

func (q *query) listAlerts(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	now := q.Now()
	all, err := d.Store.Alerts(r.Context(), now)
	if err != nil {
		return alertReply{}, err
	}
	silences, err := d.Store.Silences(r.Context(), now)
	if err != nil {
		return alertReply{}, err
	}
	out := alertsPage{Alerts: []alert.Alert{}}
	for _, a := range all {
		if !c.CanRead(a.ServerID) {
			continue
		}
		rule := alert.Rule{ID: a.RuleID, Name: a.Rule}
		if a.State != alert.StateResolved {
			a.Silenced = slices.ContainsFunc(silences, func(s alert.Silence) bool { return s.Silences(&rule, a.ServerID, now) })
		}
		out.Alerts = append(out.Alerts, a)
	}
	return ok(out)
}

// ---- rules ----

type rulesPage struct {
	Rules []alert.Rule `json:"rules"`
}

func (q *query) listRules(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	rules, err := d.Store.Rules(r.Context())
	if err != nil {
		return alertReply{}, err
	}
	out := rulesPage{Rules: []alert.Rule{}}
	for _, rule := range rules {
		if alert.OnlyServers(rule.Servers, c.CanRead) {
			out.Rules = append(out.Rules, rule)
		}
	}
	return ok(out)
}

// readableRule returns the rule {id} when c may see it. A token that may
// not read every server gets the same 403 for an unknown rule as for one
// it may not see, so it cannot probe ids.
func readableRule(r *http.Request, c *auth.Claims, d *AlertDeps) (alert.Rule, error) {
	id := r.PathValue("id")
	rule, err := d.Store.Rule(r.Context(), id)
	if err != nil {
		if errors.Is(err, metric.ErrNotFound) && !c.CanRead("*") {
			return rule, metric.Errorf(metric.ErrForbidden, "token may not read rule %q", id)
		}
		return rule, err
	}
	if !alert.OnlyServers(rule.Servers, c.CanRead) {
		return rule, metric.Errorf(metric.ErrForbidden, "token may not read rule %q", id)
	}
	return rule, nil
}

func (q *query) getRule(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	rule, err := readableRule(r, c, d)
	if err != nil {
		return alertReply{}, err
	}
	return ok(rule)
}

// decodeRule reads and checks a rule body: valid, selecting only servers
// the token may read, naming only existing channels.
func decodeRule(r *http.Request, c *auth.Claims, d *AlertDeps) (alert.Rule, error) {
	body, err := readAlertBody(r)
	if err != nil {
		return alert.Rule{}, err
	}
	rule, err := alert.DecodeRule(body)
	if err != nil {
		return rule, err
	}
	if !alert.OnlyServers(rule.Servers, c.CanRead) {
		return rule, metric.Errorf(metric.ErrForbidden, "servers: this token may only make rules naming servers it may read, without globs")
	}
	if err := alert.CheckChannels(r.Context(), d.Store, &rule); err != nil {
		return rule, err
	}
	return rule, nil
}

func (q *query) createRule(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	rule, err := decodeRule(r, c, d)
	if err != nil {
		return alertReply{}, err
	}
	if rule, err = d.Store.CreateRule(r.Context(), rule); err != nil {
		return alertReply{}, err
	}
	return created(rule)
}

func (q *query) putRule(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	old, err := readableRule(r, c, d)
	if err != nil {
		return alertReply{}, err
	}
	rule, err := decodeRule(r, c, d)
	if err != nil {
		return alertReply{}, err
	}
	rule.ID = old.ID
	if err := d.Store.PutRule(r.Context(), rule); err != nil {
		return alertReply{}, err
	}
	return ok(rule)
}

func (q *query) deleteRule(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	rule, err := readableRule(r, c, d)
	if err != nil {
		return alertReply{}, err
	}
	if err := d.Store.DeleteRule(r.Context(), rule.ID); err != nil {
		return alertReply{}, err
	}
	return noContent()
}

// ---- channels ----

type channelsPage struct {
	Channels []alert.Channel `json:"channels"`
}

func (q *query) listChannels(r *http.Request, _ *auth.Claims, d *AlertDeps) (alertReply, error) {
	chans, err := d.Store.Channels(r.Context())
	if err != nil {
		return alertReply{}, err
	}
	out := channelsPage{Channels: make([]alert.Channel, 0, len(chans))}
	for _, ch := range chans {
		out.Channels = append(out.Channels, ch.Public())
	}
	return ok(out)
}

// createChannel answers the channel without its URL (the client has it)
// but with the webhook secret: the only time it is shown.
func (q *query) createChannel(r *http.Request, _ *auth.Claims, d *AlertDeps) (alertReply, error) {
	body, err := readAlertBody(r)
	if err != nil {
		return alertReply{}, err
	}
	ch, err := alert.DecodeChannel(body, q.Now())
	if err != nil {
		return alertReply{}, err
	}
	if d.Sender != nil {
		if err := d.Sender.Check(ch); err != nil {
			return alertReply{}, err
		}
	}
	if err := d.Store.CreateChannel(r.Context(), ch); err != nil {
		return alertReply{}, err
	}
	out := ch.Public()
	out.Secret = ch.Secret
	return created(out)
}

func (q *query) deleteChannel(r *http.Request, _ *auth.Claims, d *AlertDeps) (alertReply, error) {
	if err := d.Store.DeleteChannel(r.Context(), r.PathValue("name")); err != nil {
		return alertReply{}, err
	}
	return noContent()
}

// testTimeout bounds a test send, well inside API Gateway's 30 s.
const testTimeout = 10 * time.Second

type testResult struct {
	OK       bool           `json:"ok"`
	Delivery alert.Delivery `json:"delivery"`
}

// testChannel sends a test message now and records the attempt. A send
// that fails is a 502 whose error names the cause without the URL.
func (q *query) testChannel(r *http.Request, _ *auth.Claims, d *AlertDeps) (alertReply, error) {
	if d.Sender == nil {
		return alertReply{}, metric.Errorf(metric.ErrUnavailable, "no notifier configured")
	}
	ch, err := d.Store.Channel(r.Context(), r.PathValue("name"))
	if err != nil {
		return alertReply{}, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxAlertBody))
	m := alert.Message{ID: alert.NewID(), Channel: ch.Name, Status: "test",
		Rule: alert.Rule{Name: "test message from Vitals"}, Attempt: 1}
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	start := time.Now()
	sendErr := d.Sender.Send(ctx, ch, m)
	del := alert.Delivery{Group: m.ID, Attempt: 1, Channel: ch.Name, Status: "test", Series: []string{},
		At: q.Now().UTC(), OK: sendErr == nil, DurationMs: time.Since(start).Milliseconds()}
	if sendErr != nil {
		del.Error = alert.Scrub(sendErr.Error(), ch.URL, ch.Secret)
	}
	if err := d.Store.RecordDelivery(r.Context(), del); err != nil {
		q.Logger.Warn("record test delivery", "channel", ch.Name, "err", err)
	}
	if sendErr != nil {
		return alertReply{}, &statusError{status: http.StatusBadGateway, msg: "test message to " + ch.Name + " failed: " + del.Error}
	}
	return ok(testResult{OK: true, Delivery: del})
}

// ---- silences ----

type silencesPage struct {
	Silences []alert.Silence `json:"silences"`
}

func (q *query) listSilences(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	all, err := d.Store.Silences(r.Context(), q.Now())
	if err != nil {
		return alertReply{}, err
	}
	out := silencesPage{Silences: []alert.Silence{}}
	for _, s := range all {
		if alert.OnlyServers(s.Servers, c.CanRead) {
			out.Silences = append(out.Silences, s)
		}
	}
	return ok(out)
}

func (q *query) createSilence(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	body, err := readAlertBody(r)
	if err != nil {
		return alertReply{}, err
	}
	s, err := alert.DecodeSilence(body, q.Now())
	if err != nil {
		return alertReply{}, err
	}
	if !alert.OnlyServers(s.Servers, c.CanRead) {
		return alertReply{}, metric.Errorf(metric.ErrForbidden, "servers: this token may only silence servers it may read, without globs")
	}
	if s, err = d.Store.CreateSilence(r.Context(), s); err != nil {
		return alertReply{}, err
	}
	return created(s)
}

func (q *query) deleteSilence(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	id := r.PathValue("id")
	all, err := d.Store.Silences(r.Context(), q.Now())
	if err != nil {
		return alertReply{}, err
	}
	i := slices.IndexFunc(all, func(s alert.Silence) bool { return s.ID == id })
	if i < 0 || !alert.OnlyServers(all[i].Servers, c.CanRead) {
		if c.CanRead("*") {
			return alertReply{}, metric.Errorf(metric.ErrNotFound, "silence %q not found", id)
		}
		return alertReply{}, metric.Errorf(metric.ErrForbidden, "token may not change silence %q", id)
	}
	if err := d.Store.DeleteSilence(r.Context(), id); err != nil {
		return alertReply{}, err
	}
	return noContent()
}

// ---- deliveries ----

type deliveriesPage struct {
	Deliveries []alert.Delivery `json:"deliveries"`
}

func (q *query) listDeliveries(r *http.Request, c *auth.Claims, d *AlertDeps) (alertReply, error) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return alertReply{}, metric.Errorf(metric.ErrInvalid, "limit: must be 1-1000, got %q", v)
		}
		limit = n
	}
	all, err := d.Store.Deliveries(r.Context(), limit)
	if err != nil {
		return alertReply{}, err
	}
	out := deliveriesPage{Deliveries: []alert.Delivery{}}
	for _, del := range all {
		ids := del.ServerIDs()
		if len(ids) == 0 && !c.CanRead("*") {
			continue // test sends name no server
		}
		if slices.ContainsFunc(ids, func(id string) bool { return !c.CanRead(id) }) {
			continue
		}
		out.Deliveries = append(out.Deliveries, del)
	}
	return ok(out)
}
