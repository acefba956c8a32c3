package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
	"github.com/vitals-dev/vitals/shared/testlog"
)

// fakeSender records sends; the real one (shared/notify) has its own
// tests against real receivers.
type fakeSender struct{ sent []alert.Message }

func (f *fakeSender) Check(c alert.Channel) error {
	if c.Kind == "bogus" {
		return metric.Errorf(metric.ErrInvalid, "url: unknown service")
	}
	return nil
}

func (f *fakeSender) Send(_ context.Context, c alert.Channel, m alert.Message) error {
	f.sent = append(f.sent, m)
	if strings.Contains(c.URL, "fail") {
		return errors.New(`Post "` + c.WebhookURL() + `": connection refused`)
	}
	return nil
}

type alertEnv struct {
	h      http.Handler
	logs   *testlog.Buffer
	sender *fakeSender
	store  *alertstore.Store
}

func newAlertEnv(t *testing.T) *alertEnv {
	t.Helper()
	r := redistest.New(t)
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	store, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	v, _ := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	logs := &testlog.Buffer{}
	e := &alertEnv{logs: logs, sender: &fakeSender{}, store: alertstore.New(store.Client(), store.Prefix(), store.Wrap)}
	e.h = httpapi.NewQuery(httpapi.QueryDeps{Store: store, Verifier: v, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Now: time.Now,
		Alerts: &httpapi.AlertDeps{Store: e.store, Sender: e.sender}})
	return e
}

func tok(t *testing.T, scope string, servers ...string) string {
	t.Helper()
	s, err := auth.IssueScopedToken(secret, servers, scope, time.Hour, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *alertEnv) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader([]byte(body)))
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, w.Body.String())
		}
	}
	return w.Code, out
}

func TestAlertRulesAPI(t *testing.T) {
	t.Parallel()
	e := newAlertEnv(t)
	admin := tok(t, "alerts:write", "*")
	reader := tok(t, "", "*")
	scoped := tok(t, "", "web-1")
	scopedWriter := tok(t, "alerts:write", "web-1")

	// Channel first: rules must name existing channels.
	rule := `{"name":"cpu high","metric":"cpuUsagePercent","op":">","value":90,"for":"2m","servers":["web-*"],"channels":["ops"]}`
	if code, body := e.do(t, "POST", "/api/alerts/rules", admin, rule); code != 400 || !strings.HasPrefix(body["error"].(string), "channels[0]") {
		t.Fatalf("rule with unknown channel: %d %v", code, body)
	}
	code, ch := e.do(t, "POST", "/api/alerts/channels", admin, `{"name":"ops","url":"webhook+https://hooks.example.com/T0/B0/XXXXsecret"}`)
	if code != 201 || ch["secret"] == "" || ch["url"] != nil || strings.Contains(ch["target"].(string), "XXXX") {
		t.Fatalf("create channel: %d %v", code, ch)
	}
	if code, _ := e.do(t, "POST", "/api/alerts/channels", reader, `{"name":"x","url":"webhook+https://h/x"}`); code != 403 {
		t.Fatalf("channel without alerts:write: %d", code)
	}
	if code, body := e.do(t, "POST", "/api/alerts/channels", admin, `{"name":"b","url":"bogus://x"}`); code != 400 || !strings.HasPrefix(body["error"].(string), "url:") {
		t.Fatalf("bad shoutrrr URL: %d %v", code, body)
	}
	_, list := e.do(t, "GET", "/api/alerts/channels", reader, "")
	if js, _ := json.Marshal(list); strings.Contains(string(js), "XXXX") || strings.Contains(string(js), ch["secret"].(string)) {
		t.Fatalf("channel list leaks credentials: %s", js)
	}

	code, created := e.do(t, "POST", "/api/alerts/rules", admin, rule)
	if code != 201 || created["id"] == "" {
		t.Fatalf("create rule: %d %v", code, created)
	}
	id := created["id"].(string)
	if code, body := e.do(t, "POST", "/api/alerts/rules", admin, `{"name":"x","metric":"cpuUsagePercent","op":">","servers":["*"]}`); code != 400 || !strings.HasPrefix(body["error"].(string), "value:") {
		t.Fatalf("invalid rule: %d %v", code, body)
	}
	if code, _ := e.do(t, "POST", "/api/alerts/rules", reader, rule); code != 403 {
		t.Fatalf("rule without alerts:write: %d", code)
	}
	if code, _ := e.do(t, "POST", "/api/alerts/rules", scopedWriter, rule); code != 403 {
		t.Fatalf("scoped writer made a glob rule: %d", code)
	}
	own := `{"name":"web-1 down","metric":"nodata","for":"30s","servers":["web-1"],"channels":["ops"]}`
	if code, _ := e.do(t, "POST", "/api/alerts/rules", scopedWriter, own); code != 201 {
		t.Fatalf("scoped writer, own server: %d", code)
	}

	if _, all := e.do(t, "GET", "/api/alerts/rules", reader, ""); len(all["rules"].([]any)) != 2 {
		t.Fatalf("reader sees %v", all)
	}
	if _, mine := e.do(t, "GET", "/api/alerts/rules", scoped, ""); len(mine["rules"].([]any)) != 1 {
		t.Fatalf("scoped token sees %v (the glob rule may match others' servers)", mine)
	}
	if code, _ := e.do(t, "GET", "/api/alerts/rules/"+id, scoped, ""); code != 403 {
		t.Fatalf("scoped token read a glob rule: %d", code)
	}
	if code, _ := e.do(t, "GET", "/api/alerts/rules/nope", scoped, ""); code != 403 {
		t.Fatalf("scoped token probing an unknown id: %d", code)
	}
	if code, _ := e.do(t, "GET", "/api/alerts/rules/nope", reader, ""); code != 404 {
		t.Fatalf("unknown id: %d", code)
	}
	updated := strings.Replace(rule, `"value":90`, `"value":95`, 1)
	if code, body := e.do(t, "PUT", "/api/alerts/rules/"+id, admin, updated); code != 200 || body["value"].(float64) != 95 || body["id"] != id {
		t.Fatalf("put: %d %v", code, body)
	}
	if code, _ := e.do(t, "DELETE", "/api/alerts/rules/"+id, admin, ""); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _ := e.do(t, "DELETE", "/api/alerts/rules/"+id, admin, ""); code != 404 {
		t.Fatalf("delete again: %d", code)
	}
	if code, body := e.do(t, "PATCH", "/api/alerts/rules/x", admin, ""); code != 405 {
		t.Fatalf("PATCH: %d %v", code, body)
	}
}

func TestAlertChannelTestAndDeliveries(t *testing.T) {
	t.Parallel()
	e := newAlertEnv(t)
	admin := tok(t, "alerts:write", "*")
	e.do(t, "POST", "/api/alerts/channels", admin, `{"name":"ok","url":"webhook+http://127.0.0.1:9/x"}`)
	e.do(t, "POST", "/api/alerts/channels", admin, `{"name":"bad","url":"webhook+http://127.0.0.1:9/fail-token-123"}`)
	if code, body := e.do(t, "POST", "/api/alerts/channels/ok/test", admin, ""); code != 200 || body["ok"] != true {
		t.Fatalf("test ok: %d %v", code, body)
	}
	code, body := e.do(t, "POST", "/api/alerts/channels/bad/test", admin, "")
	if code != 502 || strings.Contains(body["error"].(string), "token-123") {
		t.Fatalf("test failing channel: %d %v", code, body)
	}
	if code, _ := e.do(t, "POST", "/api/alerts/channels/none/test", admin, ""); code != 404 {
		t.Fatalf("unknown channel: %d", code)
	}
	_, ds := e.do(t, "GET", "/api/alerts/deliveries", admin, "")
	if n := len(ds["deliveries"].([]any)); n != 2 {
		t.Fatalf("deliveries %v", ds)
	}
	if js, _ := json.Marshal(ds); strings.Contains(string(js), "token-123") {
		t.Fatal("delivery log leaks the URL")
	}
	if strings.Contains(e.logs.String(), "token-123") {
		t.Fatal("log leaks the URL")
	}
	if _, ds := e.do(t, "GET", "/api/alerts/deliveries", tok(t, "", "web-1"), ""); len(ds["deliveries"].([]any)) != 0 {
		t.Fatal("scoped token sees test deliveries")
	}
	if code, _ := e.do(t, "DELETE", "/api/alerts/channels/ok", admin, ""); code != 204 {
		t.Fatalf("delete channel: %d", code)
	}
}

func TestAlertSilencesAndAlertsAccess(t *testing.T) {
	t.Parallel()
	e := newAlertEnv(t)
	admin := tok(t, "alerts:write", "*")
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	code, s := e.do(t, "POST", "/api/alerts/silences", admin, `{"servers":["web-1"],"rules":[],"until":"`+until+`","comment":"maintenance"}`)
	if code != 201 || s["id"] == "" {
		t.Fatalf("silence: %d %v", code, s)
	}
	if code, body := e.do(t, "POST", "/api/alerts/silences", admin, `{"servers":["web-1"],"until":"2001-01-01T00:00:00Z"}`); code != 400 || !strings.HasPrefix(body["error"].(string), "until:") {
		t.Fatalf("past silence: %d %v", code, body)
	}
	if _, l := e.do(t, "GET", "/api/alerts/silences", tok(t, "", "web-2"), ""); len(l["silences"].([]any)) != 0 {
		t.Fatal("web-2 token sees web-1's silence")
	}

	// Two firing alerts on two servers: each scoped token sees its own.
	ctx := context.Background()
	p, _ := e.store.Load(ctx, time.Now())
	for _, srv := range []string{"web-1", "web-2"} {
		a := alert.Alert{Key: "r/" + srv, RuleID: "r", Rule: "down", ServerID: srv, State: alert.StateFiring, Since: time.Now()}
		if ok, err := e.store.Transition(ctx, alert.Transition{Key: a.Key, Seq: p.Seq, To: &a}); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	_, all := e.do(t, "GET", "/api/alerts", tok(t, "", "*"), "")
	if len(all["alerts"].([]any)) != 2 {
		t.Fatalf("all: %v", all)
	}
	_, mine := e.do(t, "GET", "/api/alerts", tok(t, "", "web-1"), "")
	got := mine["alerts"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["serverId"] != "web-1" || got[0].(map[string]any)["silenced"] != true {
		t.Fatalf("web-1 token: %v", mine)
	}
	if code, _ := e.do(t, "DELETE", "/api/alerts/silences/"+s["id"].(string), tok(t, "alerts:write", "web-2"), ""); code != 403 {
		t.Fatalf("web-2 writer deleted web-1's silence: %d", code)
	}
	if code, _ := e.do(t, "DELETE", "/api/alerts/silences/"+s["id"].(string), admin, ""); code != 204 {
		t.Fatalf("delete silence: %d", code)
	}
}
