package streamer_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/streamer"
)

// TestBrowserAlertsAndDown opens the live view in headless Chromium: a
// firing alert shows the banner and a mark beside its host; a host silent
// for more than 3 of its intervals shows "down" with dimmed tiles instead
// of its last numbers; an alert that fires while the page is open (pushed
// by the streamer) joins the banner, and clicking it opens the host.
func TestBrowserAlertsAndDown(t *testing.T) {
	chrome := chromiumPath(t)
	e := newEnv(t, streamer.Config{})
	v, _ := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	ctx0 := context.Background()

	now := time.Now()
	// web-1 reports every 10 s and is hot; db-1 (a 10 s host) went silent
	// 7 minutes ago.
	e.ingest("web-1", sample(now.Add(-2*time.Second), 97))
	e.ingest("db-1", sample(now.Add(-7*time.Minute), 12.5))
	for _, id := range []string{"web-1", "db-1"} {
		if err := e.store.RecordInterval(ctx0, id, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	e.rule(`{"name":"cpu high","metric":"cpuUsagePercent","op":">","value":90,"for":"0s","servers":["web-*"],"channels":[]}`)
	if st := e.evaluate(); st.Transitions != 1 {
		t.Fatalf("evaluate: %+v", st)
	}

	query := httpapi.NewQuery(httpapi.QueryDeps{Store: e.store, Verifier: v, Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	siteURL := oneOrigin(t, e, query)

	ctx := newChromium(t, chrome, 1400, 1000, 90*time.Second)
	wait := func(expr string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		return s
	}

	// The banner names the firing alert; web-1 has a mark, db-1 none.
	err := chromedp.Do(ctx,
		chromedp.Navigate(siteURL+"/#server=web-1&token="+token(t, "*")),
		chromedp.WaitVisible("#detail"),
		wait(`document.getElementById('conn').dataset.state === 'live'`),
		wait(`document.body.dataset.firing === '1'`),
		chromedp.WaitVisible("#alertBanner"),
	)
	if err != nil {
		t.Fatalf("page: %v", err)
	}
	if got := text("#alertBanner"); !strings.Contains(got, "1 alert firing") || !strings.Contains(got, "cpu high · web-1") {
		t.Errorf("banner %q", got)
	}
	if got := eval(`document.querySelector('button[data-server="web-1"] .salert').className + ' ' + document.querySelector('button[data-server="web-1"] .salert').textContent`); got != "salert firing 1" {
		t.Errorf("web-1 mark %q", got)
	}
	if got := eval(`document.querySelector('button[data-server="db-1"] .salert').textContent`); got != "" {
		t.Errorf("db-1 mark %q", got)
	}
	// web-1 is live; db-1 is down in the list.
	if got := eval(`document.body.dataset.down`); got != "false" {
		t.Errorf("web-1 down = %s", got)
	}
	if got := eval(`document.querySelector('button[data-server="db-1"]').dataset.down + ' ' + document.querySelector('button[data-server="db-1"] .sago').textContent`); got != "true down" {
		t.Errorf("db-1 in the list: %q", got)
	}

	// db-1 goes silent past its deadline: a no-data rule fires, pushed to
	// the open page; the banner grows, and its item opens db-1, shown down.
	// web-1 reports again first: on a slow machine the page's start can
	// outlast its 10 s interval, and the rule would find it pending too.
	e.ingest("web-1", sample(time.Now(), 96))
	e.rule(`{"name":"host down","metric":"nodata","for":"30s","servers":["*"],"channels":[]}`)
	if st := e.evaluate(); st.Transitions != 1 {
		t.Fatalf("evaluate: %+v", st)
	}
	if err := chromedp.Do(ctx, wait(`document.body.dataset.firing === '2'`)); err != nil {
		t.Fatalf("live alert did not reach the banner: %v (banner %q)", err, text("#alertBanner"))
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(`#alertList button[data-server="db-1"]`),
		wait(`location.hash.includes('server=db-1') && document.body.dataset.down === 'true'`),
		chromedp.WaitVisible("#downBadge"),
	); err != nil {
		t.Fatalf("db-1 not shown down: %v", err)
	}
	if got := text("#updated"); !strings.HasPrefix(got, "down · last seen ") || !strings.HasSuffix(got, "m ago") {
		t.Errorf("db-1 updated %q", got)
	}
	if got := eval(`String(document.getElementById('tiles').classList.contains('stale')) + ' ' + getComputedStyle(document.querySelector('#tile-cpu .value')).opacity`); got != "true 0.3" {
		t.Errorf("db-1 tiles: %q", got)
	}
	if dir := os.Getenv("VITALS_SCREENSHOT_DIR"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "alerts-down.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
