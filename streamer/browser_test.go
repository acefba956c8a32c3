package streamer_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/streamer"
)

// chromiumPath finds the system Chromium; the test never downloads one.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "NO CHROMIUM, browser test not run (Debian: apt-get install -y chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestBrowserLiveView opens the page in headless Chromium with a token in
// the URL, waits for the live tiles and the history charts, ingests a
// sample and sees the CPU tile change over the WebSocket, switches the
// period, and saves screenshots (light and dark) to a temp dir, or to
// VITALS_SCREENSHOT_DIR when set.
// oneOrigin serves the page, the streamer and the REST routes (query) on
// one origin, mounted as localdev does, until the test ends; it returns
// the site's URL.
func oneOrigin(t *testing.T, e *env, query http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	for _, rt := range httpapi.Routes() {
		if rt.Function == httpapi.FunctionQuery {
			mux.Handle(rt.Method+" "+rt.Path, query)
		}
	}
	mux.Handle("/", e.srv.Handler())
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)
	return site.URL
}

// newChromium starts a headless Chromium (chrome) with a window of w × h
// and a fresh profile, closed when the test ends; its context ends after
// timeout.
func newChromium(t *testing.T, chrome string, w, h int, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, h),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelT)
	return ctx
}

func TestBrowserLiveView(t *testing.T) {
	chrome := chromiumPath(t)
	e := newEnv(t, streamer.Config{})
	v, _ := auth.NewVerifier(auth.VerifierConfig{Secret: secret})

	// An hour of history every 10 s for two servers, one with instances.
	now := time.Now().Truncate(10 * time.Second)
	var batch []metric.Sample
	for i := 360; i >= 1; i-- {
		at := now.Add(-time.Duration(i) * 10 * time.Second)
		s := sample(at, 20+15*wave(i))
		s.RAMUsedBytes = uint64(float64(3<<30) * (1 + 0.2*wave(i+7)))
		s.RAMUsagePercent = float64(s.RAMUsedBytes) / float64(s.RAMTotalBytes) * 100
		rx, tx := 120e3*(1+wave(i+3)), 40e3*(1+wave(i+11))
		s.NetworkRxBytesPerSec, s.NetworkTxBytesPerSec = &rx, &tx
		s.CPULoad1m = 0.8 + wave(i+5)
		s.Instances = append(s.Instances, metric.InstanceSample{Name: "postgres", CPUUsagePercent: 5 + 4*wave(i+2), MemoryUsedBytes: 700 << 20, MemoryLimitBytes: 2 << 30, MemoryUsagePercent: 34})
		for j := range s.Instances {
			s.Instances[j].InstanceID = metric.InstanceUUID("web-1", s.Instances[j].Name)
		}
		batch = append(batch, s)
	}
	if _, err := e.store.Ingest(context.Background(), "web-1", batch); err != nil {
		t.Fatal(err)
	}
	// db-1 sends nothing over the network: its byte-rate axis must still
	// read as distinct ticks.
	for _, ago := range []time.Duration{40 * time.Second, 30 * time.Second, 20 * time.Second} {
		s := sample(now.Add(-ago), 3)
		zero := 0.0
		s.NetworkRxBytesPerSec, s.NetworkTxBytesPerSec = &zero, &zero
		e.ingest("db-1", s)
	}

	// One origin, mounted as localdev does: the real query function for
	// the REST routes, the streamer for its own and the page.
	query := httpapi.NewQuery(httpapi.QueryDeps{Store: e.store, Verifier: v, Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	siteURL := oneOrigin(t, e, query)

	ctx := newChromium(t, chrome, 1400, 1000, 90*time.Second)

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
	errs := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(jsErrors)
	}
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

	// Every value the page's data-view takes, from its first script on,
	// including ones that lasted less than a task.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		window.__views = [];
		const push = (v) => { if (v && window.__views[window.__views.length - 1] !== v) window.__views.push(v); };
		new MutationObserver((recs) => {
			for (const r of recs) if (r.target === document.body) push(r.oldValue);
			push(document.body && document.body.dataset.view);
		}).observe(document, { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-view'] });
	`}); err != nil {
		t.Fatal(err)
	}
	views := func() []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__views`))
		if err != nil {
			t.Fatalf("views: %v", err)
		}
		return v
	}

	tok := token(t, "*")
	err := chromedp.Do(ctx,
		chromedp.Navigate(siteURL+"/#token="+tok),
		chromedp.WaitVisible("#detail"),
		wait(`document.body.dataset.period === '1h' && Number(document.body.dataset.points) > 100`),
		wait(`document.getElementById('conn').dataset.state === 'live'`),
		wait(`document.querySelector('#instances tr .icpu') !== null && document.querySelector('#instances tr .icpu').textContent !== '–'`),
	)
	if err != nil {
		t.Fatalf("page did not load: %v (js errors: %v, views %v)", err, errs(), views())
	}
	// While the first servers list is on its way the page says it is
	// loading: never "No servers yet" or the token prompt for a valid
	// token with servers.
	if v := views(); len(v) < 2 || v[0] != "loading" || v[len(v)-1] != "detail" || slices.ContainsFunc(v, func(s string) bool {
		return s == "no-servers" || s == "no-token" || s == "refused"
	}) {
		t.Errorf("views while loading: %v, want loading … detail", v)
	}
	cpuBefore, conn := text("#tile-cpu .value"), text("#connText")
	if cpuBefore == "87.5 %" || conn != "live" {
		t.Fatalf("before: cpu %q conn %q", cpuBefore, conn)
	}
	// The token left the URL.
	if href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`)); err != nil || strings.Contains(href, tok) {
		t.Errorf("token still in URL: %q (%v)", href, err)
	}

	// A new sample, through the store's Ingest (and so Redis pub/sub),
	// reaches the tile over the WebSocket.
	e.ingest("web-1", sample(now, 87.5))
	if err := chromedp.Do(ctx, wait(`document.querySelector('#tile-cpu .value').textContent === '87.5 %'`)); err != nil {
		t.Fatalf("live value did not change (still %q): %v (js errors: %v)", text("#tile-cpu .value"), err, errs())
	}

	// The sidebar and the header tell the selected server's age from one
	// clock, so they agree, and they keep counting between samples.
	ages := func() (side, head string) {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`[document.querySelector('#servers button.on .sago').textContent, document.getElementById('updated').textContent]`))
		if err != nil || len(v) != 2 {
			t.Fatalf("ages: %v %v", v, err)
		}
		return v[0], v[1]
	}
	side, head := ages()
	if head != "last sample "+side {
		t.Errorf("sidebar says %q, header says %q", side, head)
	}
	if err := chromedp.Do(ctx, wait(`document.getElementById('updated').textContent !== `+strconv.Quote(head))); err != nil {
		t.Errorf("header age stuck at %q: %v", head, err)
	}
	if side2, head2 := ages(); head2 != "last sample "+side2 || side2 == side {
		t.Errorf("a second later: sidebar %q, header %q (was %q)", side2, head2, side)
	}

	dir := os.Getenv("VITALS_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := func(name string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(png))
	}
	shot("live-1h-light.png")

	// Switch the period: the charts reload from REST.
	err = chromedp.Do(ctx,
		chromedp.Click(`#periods button[data-period="6h"]`),
		wait(`document.body.dataset.period === '6h' && document.querySelector('#periods .on').dataset.period === '6h'`),
	)
	if err != nil {
		t.Fatalf("period switch: %v", err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	shot("live-6h-dark.png")

	// Pick the other server from the list.
	err = chromedp.Do(ctx,
		chromedp.Click(`#servers button[data-server="db-1"]`),
		wait(`document.getElementById('serverName').textContent === 'db-1' && document.querySelector('#tile-cpu .value').textContent === '3.0 %'`),
		wait(`document.body.dataset.period === '6h' && document.body.dataset.server === 'db-1'`),
	)
	if err != nil {
		t.Fatalf("select db-1: %v", err)
	}
	// No y axis repeats a label, even for db-1's all-zero network rates.
	ticks, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll('.chart')].map((c) => [c.id, c.dataset.yTicks || '']))`))
	if err != nil {
		t.Fatal(err)
	}
	for id, labels := range ticks {
		t.Logf("%s y axis: %s", id, labels)
		l := strings.Split(labels, " | ")
		if sorted := slices.Sorted(slices.Values(l)); len(l) < 2 || len(slices.Compact(sorted)) != len(l) {
			t.Errorf("%s y axis: %q", id, labels)
		}
	}
	if got := ticks["chart-net"]; !strings.HasPrefix(got, "0 B/s | ") || strings.Contains(got, "1 B/s") {
		t.Errorf("idle network axis: %q", got)
	}

	// A phone-width view.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	shot("phone-dark.png")
	if err := chromedp.Do(ctx, chromedp.EmulateReset()); err != nil {
		t.Fatal(err)
	}

	// A token that may read no server: "No servers yet", no token prompt.
	err = chromedp.Do(ctx,
		chromedp.Navigate(siteURL+"/?empty#token="+token(t, "nobody")),
		wait(`document.body.dataset.view === 'no-servers'`),
	)
	if err != nil {
		t.Fatalf("no servers: %v (views %v)", err, views())
	}
	if v := views(); v[0] != "loading" {
		t.Errorf("views for an empty list: %v", v)
	}
	if got, btn := text("#emptyTitle"), text("#empty"); got != "No servers yet" || strings.Contains(btn, "Paste a token") {
		t.Errorf("empty list shows %q / %q", got, btn)
	}

	// A token the server refuses: the prompt, with the reason.
	err = chromedp.Do(ctx,
		chromedp.Navigate(siteURL+"/?refused#token=not.a.jwt"),
		wait(`document.body.dataset.view === 'refused' && document.getElementById('tokenDialog').open`),
	)
	if err != nil {
		t.Fatalf("refused token: %v (views %v)", err, views())
	}
	if got := text("#tokenError"); !strings.Contains(got, "invalid token") {
		t.Errorf("token error %q", got)
	}
	if es := errs(); len(es) > 0 {
		t.Fatalf("javascript errors: %v", es)
	}
}

// wave is a smooth deterministic wiggle in [0, 1] for plausible charts.
func wave(i int) float64 {
	x := float64(i%60) / 60
	if x > 0.5 {
		x = 1 - x
	}
	return x * 2
}
