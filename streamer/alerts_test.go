package streamer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/evaluator"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/notify"
	"github.com/vitals-dev/vitals/shared/redistest"
	"github.com/vitals-dev/vitals/streamer"
)

// alertMsg is an "alert" frame (WebSocket) or event data (SSE).
type alertMsg struct {
	Type     string  `json:"type"`
	Key      string  `json:"key"`
	RuleID   string  `json:"ruleId"`
	Rule     string  `json:"rule"`
	ServerID string  `json:"serverId"`
	Metric   string  `json:"metric"`
	State    string  `json:"state"`
	Since    string  `json:"since"`
	Value    float64 `json:"value"`
	Version  int64   `json:"version"`
}

// readAlert reads the next WebSocket frame, which must be an alert.
func (c *client) readAlert() alertMsg {
	c.t.Helper()
	s := c.read()
	if !strings.HasPrefix(s, `{"type":"alert"`) {
		c.t.Fatalf("want an alert frame, got %q", s)
	}
	var m alertMsg
	decodeJSON(c.t, s, &m)
	return m
}

// evaluate runs one pass of the real evaluator on e's Redis.
func (e *env) evaluate() evaluator.Stats {
	e.t.Helper()
	ev := evaluator.New(e.store, e.alerts, notify.New("", nil), evaluator.Config{}, nil, nil)
	st, err := ev.Evaluate(context.Background())
	if err != nil {
		e.t.Fatalf("evaluate: %v", err)
	}
	return st
}

func (e *env) rule(body string) alert.Rule {
	e.t.Helper()
	r, err := alert.DecodeRule([]byte(body))
	if err != nil {
		e.t.Fatal(err)
	}
	r, err = e.alerts.CreateRule(context.Background(), r)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestAlertPush: transitions applied by the real evaluator reach a
// WebSocket and an SSE subscriber on real sockets, after the snapshot of
// what was already firing; a token scoped to one server sees only that
// server's alerts.
func TestAlertPush(t *testing.T) {
	t.Parallel()
	e := newEnv(t, streamer.Config{})
	now := time.Now()
	e.ingest("web-1", sample(now.Add(-time.Second), 97))
	e.ingest("db-1", sample(now.Add(-time.Second), 10))
	r := e.rule(`{"name":"cpu high","metric":"cpuUsagePercent","op":">","value":90,"for":"0s","servers":["*"],"channels":[]}`)
	if st := e.evaluate(); st.Transitions != 1 {
		t.Fatalf("first pass: %+v", st)
	}

	all := e.dial()
	all.auth(token(t, "*"))
	db := e.dial()
	db.auth(token(t, "db-1"))
	if got := all.ask("subscribe alerts"); got != "ok" {
		t.Fatalf("subscribe alerts: %q", got)
	}
	if got := db.ask("subscribe alerts"); got != "ok" {
		t.Fatalf("subscribe alerts: %q", got)
	}
	resp, web := e.sse("/api/alerts/stream?access_token="+token(t, "web-1"), "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("SSE: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// The snapshot: web-1 is firing.
	m := all.readAlert()
	if m.Type != "alert" || m.ServerID != "web-1" || m.State != "firing" || m.RuleID != r.ID || m.Rule != "cpu high" ||
		m.Metric != "cpuUsagePercent" || m.Value != 97 || m.Since == "" || m.Version == 0 {
		t.Fatalf("snapshot frame: %+v", m)
	}
	var sm alertMsg
	decodeJSON(t, web.nextData(t).data, &sm)
	if sm != m {
		t.Fatalf("SSE snapshot %+v, WebSocket %+v", sm, m)
	}

	// Live: db-1 fires, web-1 resolves, in one evaluator pass.
	e.ingest("web-1", sample(now, 20))
	e.ingest("db-1", sample(now, 95))
	if st := e.evaluate(); st.Transitions != 2 {
		t.Fatalf("second pass: %+v", st)
	}
	got := map[string]alertMsg{}
	for range 2 {
		m := all.readAlert()
		got[m.ServerID] = m
	}
	if got["web-1"].State != "resolved" || got["db-1"].State != "firing" || got["db-1"].Value != 95 ||
		got["web-1"].Version <= m.Version {
		t.Fatalf("live frames: %+v", got)
	}
	decodeJSON(t, web.nextData(t).data, &sm)
	if sm.ServerID != "web-1" || sm.State != "resolved" {
		t.Fatalf("SSE live event: %+v", sm)
	}
	if d := db.readAlert(); d.ServerID != "db-1" || d.State != "firing" {
		t.Fatalf("db-1 token got %+v", d)
	}

	// db-1 resolves: the scoped socket gets it, and never a web-1 frame.
	e.ingest("db-1", sample(now.Add(time.Second), 5))
	e.evaluate()
	if d := db.readAlert(); d.ServerID != "db-1" || d.State != "resolved" {
		t.Fatalf("db-1 token got %+v", d)
	}
	if s, err := db.tryRead(300 * time.Millisecond); err == nil {
		t.Fatalf("db-1 token got another frame: %s", s)
	}
	// The web-1 stream saw neither db-1 transition: its next event is
	// web-1 firing again.
	e.ingest("web-1", sample(now.Add(time.Second), 99))
	e.evaluate()
	decodeJSON(t, web.nextData(t).data, &sm)
	if sm.ServerID != "web-1" || sm.State != "firing" || sm.Value != 99 {
		t.Fatalf("web-1 stream got %+v", sm)
	}
	for _, want := range []string{"db-1 resolved", "web-1 firing"} {
		if m := all.readAlert(); m.ServerID+" "+m.State != want {
			t.Fatalf("want %s, got %+v", want, m)
		}
	}
	if got := all.ask("unsubscribe alerts"); got != "ok" {
		t.Fatalf("unsubscribe alerts: %q", got)
	}
	if got := all.ask("unsubscribe alerts"); got != "error: not subscribed to alerts" {
		t.Fatalf("unsubscribe alerts twice: %q", got)
	}
}

// TestAlertStreamAuth: the SSE route wants a token like the others.
func TestAlertStreamAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, streamer.Config{})
	resp, _ := e.sse("/api/alerts/stream", "")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	resp, _ = e.sse("/api/alerts/stream", token(t, "web-1"))
	if resp.StatusCode != 200 {
		t.Fatalf("bearer: %d", resp.StatusCode)
	}
	c := e.dial()
	if got := c.ask("subscribe alerts"); !strings.HasPrefix(got, "error: not authenticated") {
		t.Fatalf("before auth: %q", got)
	}
}

// TestAlertResyncAfterRedisRestart: transitions published while the
// subscription is down are lost to pub/sub; once the hub resubscribes it
// re-reads the alerts, so a firing alert that is gone (Redis came back
// empty) is sent as "ok", and live transitions flow again.
func TestAlertResyncAfterRedisRestart(t *testing.T) {
	rs := redistest.StartServer(t)
	e := newEnvOn(t, rs.URL, "ar:", streamer.Config{})
	e.ingest("web-1", sample(time.Now().Add(-time.Second), 97))
	e.rule(`{"name":"cpu high","metric":"cpuUsagePercent","op":">","value":90,"for":"0s","servers":["*"],"channels":[]}`)
	e.evaluate()

	c := e.dial()
	c.auth(token(t, "*"))
	if got := c.ask("subscribe alerts"); got != "ok" {
		t.Fatal(got)
	}
	if m := c.readAlert(); m.ServerID != "web-1" || m.State != "firing" {
		t.Fatalf("snapshot %+v", m)
	}
	ch := e.alerts.EventsChannel()
	eventually(t, "alert subscription confirmed", func() bool {
		n, err := e.store.Client().PubSubNumSub(context.Background(), ch).Result()
		return err == nil && n[ch] == 1
	})

	rs.Restart(t)

	if m := c.readAlert(); m.ServerID != "web-1" || m.State != "ok" {
		t.Fatalf("after restart %+v", m)
	}
	// Live again on the new connection.
	eventually(t, "ingest after restart", func() bool {
		s := sample(time.Now(), 99)
		s.Instances = nil
		res, err := e.store.Ingest(context.Background(), "web-1", []metric.Sample{s})
		return err == nil && res.Accepted == 1
	})
	e.rule(`{"name":"cpu high","metric":"cpuUsagePercent","op":">","value":90,"for":"0s","servers":["*"],"channels":[]}`)
	e.evaluate()
	if m := c.readAlert(); m.ServerID != "web-1" || m.State != "firing" || m.Value != 99 {
		t.Fatalf("live after restart %+v", m)
	}
}
