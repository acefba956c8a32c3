package streamer_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/streamer"
)

// browserSite is the page and the REST API on one origin, as localdev
// mounts them, opened in a headless Chromium.
type browserSite struct {
	e    *env
	url  string
	ctx  context.Context
	mu   sync.Mutex
	errs []string // JavaScript exceptions
	logs []string // browser log entries (CSP violations land here)
}

func newBrowserSite(t *testing.T) *browserSite {
	t.Helper()
	chrome := chromiumPath(t)
	e := newEnv(t, streamer.Config{PingInterval: time.Hour})
	v, _ := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	query := httpapi.NewQuery(httpapi.QueryDeps{Store: e.store, Verifier: v, Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	siteURL := oneOrigin(t, e, query)

	ctx := newChromium(t, chrome, 1200, 900, 120*time.Second)

	b := &browserSite{e: e, url: siteURL, ctx: ctx}
	if err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg = d.Exception.Description
			}
			b.errs = append(b.errs, fmt.Sprintf("%s (%s:%d)", msg, d.URL, d.LineNumber+1))
		case *cdplog.EventEntryAdded:
			b.logs = append(b.logs, ev.Entry.Text)
		}
	}); err != nil {
		t.Fatalf("listen: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("log enable: %v", err)
	}
	return b
}

func (b *browserSite) jsErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.errs)
}

func (b *browserSite) logged(sub string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.ContainsFunc(b.logs, func(s string) bool { return strings.Contains(s, sub) })
}

// wait polls a JavaScript condition, generously: it fails only on a hang.
func (b *browserSite) wait(t *testing.T, what, expr string) {
	t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		cur, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash + ' / ' + document.getElementById('serverName').textContent + ' / ' + document.querySelector('#tile-cpu .value').textContent`))
		t.Fatalf("%s: %v (page: %s; js errors: %v)", what, err, cur, b.jsErrors())
	}
}

// shows is the condition "the page shows server id, with its CPU".
func shows(id, cpu string) string {
	return fmt.Sprintf(`document.getElementById('serverName').textContent === %q && document.body.dataset.server === %q && document.querySelector('#tile-cpu .value').textContent === %q`, id, id, cpu)
}

// Issue 12 item 11: editing #server= in the address bar, or going Back and
// Forward between servers, must move the page (tiles, charts and the live
// subscription) to the server the URL names. Before, the page stayed on
// the old server. It also shows the page still connects its WebSocket
// under the tightened connect-src (item 10).
func TestBrowserFollowsURL(t *testing.T) {
	b := newBrowserSite(t)
	now := time.Now().Truncate(time.Second)
	b.e.ingest("web-1", sample(now.Add(-20*time.Second), 11))
	b.e.ingest("db-1", sample(now.Add(-20*time.Second), 3))
	b.e.ingest("db-2", sample(now.Add(-20*time.Second), 7))

	if err := chromedp.Do(b.ctx, chromedp.Navigate(b.url+"/#server=web-1&token="+token(t, "*"))); err != nil {
		t.Fatal(err)
	}
	b.wait(t, "start on web-1", shows("web-1", "11.0 %"))
	b.wait(t, "websocket live", `document.getElementById('conn').dataset.state === 'live'`)

	// The address bar: #server=db-1.
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash = 'server=db-1'`)); err != nil {
		t.Fatal(err)
	}
	b.wait(t, "hash edited to db-1", shows("db-1", "3.0 %"))
	// Live updates now come for db-1.
	b.e.ingest("db-1", sample(now.Add(-10*time.Second), 33))
	b.wait(t, "live db-1 sample", shows("db-1", "33.0 %"))

	// A click adds a history entry; Back and Forward walk them.
	if err := chromedp.Do(b.ctx, chromedp.Click(`#servers button[data-server="db-2"]`)); err != nil {
		t.Fatal(err)
	}
	b.wait(t, "click db-2", shows("db-2", "7.0 %")+` && location.hash.includes('server=db-2')`)
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](`history.back()`)); err != nil {
		t.Fatal(err)
	}
	b.wait(t, "back to db-1", shows("db-1", "33.0 %")+` && location.hash.includes('server=db-1')`)
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](`history.back()`)); err != nil {
		t.Fatal(err)
	}
	b.wait(t, "back to web-1", shows("web-1", "11.0 %"))
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](`history.forward()`)); err != nil {
		t.Fatal(err)
	}
	b.wait(t, "forward to db-1", shows("db-1", "33.0 %"))
	// And the live subscription followed: a db-1 sample still arrives.
	b.e.ingest("db-1", sample(now, 44))
	b.wait(t, "live db-1 sample after Forward", shows("db-1", "44.0 %"))

	// A server the token does not list keeps the page where it is.
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.hash = 'server=nosuch'`)); err != nil {
		t.Fatal(err)
	}
	b.wait(t, "unknown server refused", shows("db-1", "44.0 %")+` && location.hash.includes('server=db-1') && !document.getElementById('toast').hidden`)
	if b.logged("Content Security Policy") {
		t.Errorf("CSP violations on the page itself: %v", b.logs)
	}
	if es := b.jsErrors(); len(es) > 0 {
		t.Fatalf("javascript errors: %v", es)
	}
}

// Issue 12 item 10: another site may not frame the page (clickjacking).
// Chromium refuses the frame and says so in its log. Before, it framed it.
func TestBrowserRefusesFraming(t *testing.T) {
	b := newBrowserSite(t)
	framer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>framer</title><iframe id="f" src="%s/"></iframe>`, b.url)
	}))
	defer framer.Close()
	if err := chromedp.Do(b.ctx, chromedp.Navigate(framer.URL+"/")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !b.logged("frame-ancestors") {
		if time.Now().After(deadline) {
			b.mu.Lock()
			t.Fatalf("the page was framed: no frame-ancestors refusal in the browser log %q", b.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
