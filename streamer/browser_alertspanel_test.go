package streamer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/notify"
	"github.com/vitals-dev/vitals/streamer"
)

// TestBrowserAlertsPanel opens the Alerts panel of the live view in
// headless Chromium, against the real query function and streamer on a
// real Redis: it lists the rules the token may read (one made in the store,
// one over REST) and the recent alerts; a token with alerts:write deletes a
// rule after a confirmation, and a 403 (the rule widened meanwhile beyond
// the token's servers) shows a toast and keeps the rule; a read-only token
// gets no Delete buttons. The panel opens and closes from the keyboard and
// fits a phone in dark mode.
func TestBrowserAlertsPanel(t *testing.T) {
	chrome := chromiumPath(t)
	e := newEnv(t, streamer.Config{})
	v, _ := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	ctx0 := context.Background()

	now := time.Now()
	e.ingest("web-1", sample(now.Add(-2*time.Second), 97))
	e.ingest("db-1", sample(now.Add(-2*time.Second), 12.5))
	cpu := e.rule(`{"name":"cpu high","metric":"cpuUsagePercent","op":">","value":90,"clear":80,"for":"0s","servers":["web-*"],"channels":[]}`)
	if st := e.evaluate(); st.Transitions != 1 {
		t.Fatalf("evaluate: %+v", st)
	}

	query := httpapi.NewQuery(httpapi.QueryDeps{
		Store: e.store, Verifier: v, Logger: slog.New(slog.DiscardHandler), Now: time.Now,
		Alerts: &httpapi.AlertDeps{Store: e.alerts, Sender: notify.New("", nil)},
	})
	siteURL := oneOrigin(t, e, query)

	scoped := func(scope string, servers ...string) string {
		tok, err := auth.IssueScopedToken(secret, servers, scope, time.Hour, "", "", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	writer, reader, webWriter := scoped(auth.ScopeAlertsWrite, "*"), token(t, "*"), scoped(auth.ScopeAlertsWrite, "web-1")
	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, siteURL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+writer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	// Over REST: a channel (its webhook never called here) and a rule.
	post("/api/alerts/channels", `{"name":"ops","url":"webhook+http://127.0.0.1:9/hook"}`)
	post("/api/alerts/rules", `{"name":"host down","metric":"nodata","for":"30s","servers":["*"],"channels":["ops"]}`)
	// Only this one is readable by a token for web-1 alone (no globs).
	web := e.rule(`{"name":"web-1 disk","metric":"diskUsagePercent","op":">=","value":95,"for":"5m","servers":["web-1"],"channels":[]}`)

	ctx := newChromium(t, chrome, 1400, 1000, 120*time.Second)

	var mu sync.Mutex
	var jsErrors []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if ex, ok := ev.(*runtime.EventExceptionThrown); ok {
			d := ex.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			mu.Lock()
			jsErrors = append(jsErrors, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listen: %v", err)
	}
	wait := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second))
	}
	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}
	shot := func(name string) {
		dir := os.Getenv("VITALS_SCREENSHOT_DIR")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := `[...document.querySelectorAll('#rulesList li.rule .rule-name')].map((n) => n.textContent).join(',')`
	ruleText := func(id, sel string) string {
		t.Helper()
		return eval(fmt.Sprintf(`document.querySelector('#rulesList li[data-rule=%q] %s').textContent`, id, sel))
	}
	// open loads the page with tok and opens the panel from the keyboard.
	open := func(tag, tok string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(siteURL+"/?"+tag+"#server=web-1&token="+tok),
			wait(`document.getElementById('conn').dataset.state === 'live' && document.body.dataset.firing === '1'`),
			chromedp.Focus("#alertsBtn"),
			chromedp.KeyEvent(kb.Enter),
			wait(`document.getElementById('alertsPanel').open && document.getElementById('alertsPanel').dataset.loaded === 'true'`),
		)
		if err != nil {
			t.Fatalf("%s: open the panel: %v", tag, err)
		}
	}

	// A token with alerts:write for every server: every rule, sorted by
	// name, each with what it watches and where it notifies; the recent
	// alerts; a Delete button per rule.
	open("w", writer)
	if got := eval(`document.getElementById('alertsBtn').getAttribute('aria-label')`); got != "Alerts, 1 firing" {
		t.Errorf("Alerts button label %q", got)
	}
	if got := eval(rules); got != "cpu high,host down,web-1 disk" {
		t.Fatalf("rules listed: %q", got)
	}
	if got := ruleText(cpu.ID, ".rule-cond"); got != "cpuUsagePercent > 90 · clears at 80" {
		t.Errorf("cpu high condition %q", got)
	}
	if got := ruleText(cpu.ID, ".rule-meta"); got != "Serversweb-*Channelsnone" {
		t.Errorf("cpu high meta %q", got)
	}
	if got := ruleText(web.ID, ".rule-cond"); got != "diskUsagePercent >= 95 for 5m" {
		t.Errorf("web-1 disk condition %q", got)
	}
	hostDown := eval(`[...document.querySelectorAll('#rulesList li.rule')].find((li) => li.querySelector('.rule-name').textContent === 'host down').dataset.rule`)
	if got := ruleText(hostDown, ".rule-cond") + " | " + ruleText(hostDown, ".rule-meta"); got != "no data for 30s beyond the reporting interval | Servers*Channelsops" {
		t.Errorf("host down %q", got)
	}
	if got := eval(`[...document.querySelectorAll('#recentList li.recent')].map((li) => li.dataset.state + ' ' + li.querySelector('.recent-rule').textContent + ' ' + li.querySelector('.recent-series').textContent + ' ' + (li.querySelector('time').dateTime !== '')).join(',')`); got != "firing cpu high web-1 true" {
		t.Errorf("recent alerts %q", got)
	}
	if got := eval(`String(document.querySelectorAll('#rulesList button[data-action="delete"]').length)`); got != "3" {
		t.Errorf("%s delete buttons for a write token", got)
	}
	shot("alerts-panel.png")

	// Delete asks first; Cancel keeps the rule; Delete, Delete removes it
	// from the list and from the store.
	del := fmt.Sprintf(`#rulesList li[data-rule=%q] .rule-actions button`, hostDown)
	err := chromedp.Do(ctx,
		chromedp.Click(del+`[data-action="delete"]`),
		wait(fmt.Sprintf(`document.activeElement === document.querySelector('%s[data-action="cancel"]')`, del)),
		chromedp.KeyEvent(kb.Enter), // Cancel, from the keyboard
		wait(fmt.Sprintf(`!!document.querySelector('%s[data-action="delete"]')`, del)),
		chromedp.Click(del+`[data-action="delete"]`),
		chromedp.Click(del+`[data-action="confirm"]`),
		wait(fmt.Sprintf(`document.getElementById('alertsPanel').dataset.loaded === 'true' && !document.querySelector('#rulesList li[data-rule=%q]')`, hostDown)),
	)
	if err != nil {
		t.Fatalf("delete: %v (rules %q)", err, eval(rules))
	}
	if _, err := e.alerts.Rule(ctx0, hostDown); !errors.Is(err, metric.ErrNotFound) {
		t.Errorf("deleted rule still in the store: %v", err)
	}
	if got := eval(`document.getElementById('toast').textContent`); got != "Rule “host down” deleted." {
		t.Errorf("toast %q", got)
	}
	// Escape closes the panel and gives the focus back to its button.
	if err := chromedp.Do(ctx,
		chromedp.KeyEvent(kb.Escape),
		wait(`!document.getElementById('alertsPanel').open && document.activeElement.id === 'alertsBtn'`),
	); err != nil {
		t.Fatalf("escape: %v", err)
	}

	// A write token for web-1 only sees the rule that can only match
	// web-1. The rule is widened to every server behind the page's back:
	// the server refuses the delete (403), the page says so in a toast
	// and the rule stays.
	open("s", webWriter)
	if got := eval(rules); got != "web-1 disk" {
		t.Fatalf("rules for a web-1 token: %q", got)
	}
	widened := web
	widened.Servers = []string{"*"}
	if err := e.alerts.PutRule(ctx0, widened); err != nil {
		t.Fatal(err)
	}
	del = fmt.Sprintf(`#rulesList li[data-rule=%q] .rule-actions button`, web.ID)
	err = chromedp.Do(ctx,
		chromedp.Click(del+`[data-action="delete"]`),
		chromedp.Click(del+`[data-action="confirm"]`),
		wait(`!document.getElementById('toast').hidden && document.getElementById('toast').textContent.startsWith('Not allowed')`),
	)
	if err != nil {
		t.Fatalf("403: %v (toast %q)", err, eval(`document.getElementById('toast').textContent`))
	}
	if got := eval(`document.getElementById('toast').textContent`); !strings.Contains(got, "may not read rule") {
		t.Errorf("403 toast %q", got)
	}
	// The toast shows above the modal panel (a popover in the top layer).
	if got := eval(`String(document.getElementById('toast').matches(':popover-open'))`); got != "true" {
		t.Errorf("toast not in the top layer: %s", got)
	}
	if _, err := e.alerts.Rule(ctx0, web.ID); err != nil {
		t.Errorf("refused delete removed the rule: %v", err)
	}
	if got := eval(fmt.Sprintf(`String(!!document.querySelector('%s[data-action="delete"]'))`, del)); got != "true" {
		t.Errorf("no Delete button after the refusal")
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape), wait(`!document.getElementById('alertsPanel').open`)); err != nil {
		t.Fatal(err)
	}

	// A read-only token: the same list, no buttons, and the panel says why.
	open("r", reader)
	if got := eval(rules); got != "cpu high,web-1 disk" {
		t.Fatalf("rules for a read-only token: %q", got)
	}
	if got := eval(`String(document.querySelectorAll('#alertsPanel button').length) + ' ' + document.getElementById('alertsAccess').textContent`); !strings.HasPrefix(got, "1 Read-only") {
		t.Errorf("read-only panel: %q (only Close may be a button)", got)
	}

	// A phone in dark mode: the panel fills the screen, nothing overflows
	// sideways, and it is drawn in the dark palette.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, wait(`document.getElementById('alertsPanel').getBoundingClientRect().width === innerWidth`)); err != nil {
		t.Fatalf("phone: panel %s wide, viewport %s", eval(`String(document.getElementById('alertsPanel').getBoundingClientRect().width)`), eval(`String(innerWidth)`))
	}
	if got := eval(`(() => { const p = document.getElementById('alertsPanel'); return String(p.scrollWidth <= p.clientWidth) + ' ' + getComputedStyle(p).backgroundColor; })()`); got != "true rgb(19, 26, 34)" {
		t.Errorf("phone, dark: %q (fits, background)", got)
	}
	shot("alerts-panel-phone-dark.png")
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape), wait(`!document.getElementById('alertsPanel').open`)); err != nil {
		t.Fatal(err)
	}
	// The header, with the Alerts button, fits the phone too.
	if got := eval(`String(document.querySelector('.top').scrollWidth <= innerWidth && document.getElementById('tokenBtn').getBoundingClientRect().right <= innerWidth)`); got != "true" {
		t.Errorf("header overflows a phone")
	}
	shot("alerts-header-phone-dark.png")

	mu.Lock()
	defer mu.Unlock()
	if len(jsErrors) > 0 {
		t.Fatalf("javascript errors: %v", slices.Clone(jsErrors))
	}
}
