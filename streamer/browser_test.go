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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
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
	e.ingest("db-1", sample(now.Add(-20*time.Second), 3))

	// One origin, mounted as localdev does: the real query function for
	// the REST routes, the streamer for its own and the page.
	query := httpapi.NewQuery(httpapi.QueryDeps{Store: e.store, Verifier: v, Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	mux := http.NewServeMux()
	for _, rt := range httpapi.Routes() {
		if rt.Function == httpapi.FunctionQuery {
			mux.Handle(rt.Method+" "+rt.Path, query)
		}
	}
	mux.Handle("/", e.srv.Handler())
	site := httptest.NewServer(mux)
	defer site.Close()

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
		chromedp.WindowSize(1400, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

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

	tok := token(t, "*")
	err := chromedp.Do(ctx,
		chromedp.Navigate(site.URL+"/#token="+tok),
		chromedp.WaitVisible("#detail"),
		wait(`document.body.dataset.period === '1h' && Number(document.body.dataset.points) > 100`),
		wait(`document.getElementById('conn').dataset.state === 'live'`),
		wait(`document.querySelector('#instances tr .icpu') !== null && document.querySelector('#instances tr .icpu').textContent !== '–'`),
	)
	if err != nil {
		t.Fatalf("page did not load: %v (js errors: %v)", err, errs())
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
	)
	if err != nil {
		t.Fatalf("select db-1: %v", err)
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
