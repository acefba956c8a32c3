package evaluator_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/evaluator"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/notify"
)

// verifyOpenSSL checks a webhook's signature the way a receiver written in
// shell would: openssl dgst -sha256 -hmac over timestamp + "\n" + body.
func verifyOpenSSL(t *testing.T, secret string, r received) {
	t.Helper()
	ts, sig := r.header.Get(notify.HeaderTimestamp), r.header.Get(notify.HeaderSignature)
	if ts == "" || !strings.HasPrefix(sig, "v1=") {
		t.Fatalf("webhook without signature headers: %v", r.header)
	}
	if want := notify.Sign(secret, mustInt(t, ts), r.body); sig != want {
		t.Fatalf("signature %s, want %s", sig, want)
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Log("openssl not on PATH: signature checked in Go only")
		return
	}
	cmd := exec.Command("openssl", "dgst", "-sha256", "-hmac", secret)
	cmd.Stdin = bytes.NewReader(append([]byte(ts+"\n"), r.body...))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	f := strings.Fields(string(out))
	if got := "v1=" + f[len(f)-1]; got != sig {
		t.Fatalf("openssl says %s, header says %s", got, sig)
	}
}

func mustInt(t *testing.T, s string) int64 {
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestHostDownFiresOnceAndResolvesOnce: a host that stops reporting gets
// one signed "firing" webhook (after its interval + for, and the group
// window), and one "resolved" when it reports again; nothing in between
// however often the evaluator runs.
func TestHostDownFiresOnceAndResolvesOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rc := newReceiver(t)
	ch := w.channel("ops", "webhook+"+rc.URL+"/hook")
	w.rule(`{"name":"host down","metric":"nodata","for":"30s","servers":["*"],"channels":["ops"]}`)
	e := w.evaluator()
	last := w.clk.Now()
	w.report("web-1", 10, 10*time.Second)
	for range 30 { // 150 s of 5-s passes, silent since `last`
		w.clk.Add(5 * time.Second)
		w.step(e)
	}
	bodies := rc.bodies(t)
	if len(bodies) != 1 || bodies[0].Status != "firing" || bodies[0].ServerID != "web-1" || bodies[0].Metric != "nodata" || bodies[0].Count != 1 {
		t.Fatalf("want one firing webhook for web-1, got %+v", bodies)
	}
	if want := last.Add(40 * time.Second); !bodies[0].StartsAt.Equal(want) {
		t.Errorf("startsAt %s, want the deadline %s (last sample + 10 s interval + 30 s for)", bodies[0].StartsAt, want)
	}
	if bodies[0].Rule.Name != "host down" || bodies[0].URL == "" || bodies[0].EndsAt != nil {
		t.Errorf("body %+v", bodies[0])
	}
	verifyOpenSSL(t, ch.Secret, rc.got()[0])

	w.report("web-1", 10, 10*time.Second)
	for range 20 {
		w.clk.Add(5 * time.Second)
		w.report("web-1", 10, 10*time.Second)
		w.step(e)
	}
	bodies = rc.bodies(t)
	if len(bodies) != 2 || bodies[1].Status != "resolved" || bodies[1].EndsAt == nil || bodies[1].ServerID != "web-1" {
		t.Fatalf("want firing then one resolved, got %+v", bodies)
	}
	verifyOpenSSL(t, ch.Secret, rc.got()[1])
	if _, ok := w.state(alert.SeriesKey(bodies[0].Rule.ID, "web-1", "")); ok {
		t.Error("resolved series still has a state")
	}
	all, _ := w.alerts.Alerts(context.Background(), w.clk.Now())
	if len(all) != 1 || all[0].State != alert.StateResolved {
		t.Errorf("GET /api/alerts would show %+v, want the resolved alert", all)
	}
	ds, _ := w.alerts.Deliveries(context.Background(), 10)
	if len(ds) != 2 || !ds[0].OK || !ds[1].OK {
		t.Errorf("deliveries %+v", ds)
	}
}

// TestCronHostUsesItsOwnInterval: a host reporting once a minute is not
// down 40 s after its last report.
func TestCronHostUsesItsOwnInterval(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rc := newReceiver(t)
	w.channel("ops", "webhook+"+rc.URL)
	r := w.rule(`{"name":"down","metric":"nodata","for":"30s","servers":["*"],"channels":["ops"],"group":"0s"}`)
	e := w.evaluator()
	w.report("cron-1", 1, time.Minute)
	w.clk.Add(55 * time.Second)
	w.step(e)
	if _, ok := w.state(alert.SeriesKey(r.ID, "cron-1", "")); ok {
		t.Fatal("a 1-minute host is pending 55 s after its last report")
	}
	w.clk.Add(40 * time.Second) // 95 s: past 60 s + 30 s
	w.step(e)
	if st, _ := w.state(alert.SeriesKey(r.ID, "cron-1", "")); st.State != alert.StateFiring || len(rc.got()) != 1 {
		t.Fatalf("state %+v, %d webhooks; want firing and one webhook", st, len(rc.got()))
	}
}

// TestThresholdForAndFlap: a threshold held for `for` fires once; one that
// dips out before `for` never notifies.
func TestThresholdForAndFlap(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rc := newReceiver(t)
	w.channel("ops", "webhook+"+rc.URL)
	r := w.rule(`{"name":"cpu high","metric":"cpuUsagePercent","op":">","value":90,"clear":80,"for":"1m","servers":["web-*"],"channels":["ops"],"group":"0s"}`)
	e := w.evaluator()

	// Flap on web-2: 50 s above, one sample below, 50 s above, ...
	// Steady on web-1: above the whole time.
	for i := range 30 {
		cpu2 := 95.0
		if i%6 == 5 {
			cpu2 = 40
		}
		w.report("web-1", 95, 10*time.Second)
		w.report("web-2", cpu2, 10*time.Second)
		w.report("db-1", 99, 10*time.Second) // not selected by web-*
		w.step(e)
		w.clk.Add(10 * time.Second)
	}
	bodies := rc.bodies(t)
	if len(bodies) != 1 || bodies[0].ServerID != "web-1" || bodies[0].Status != "firing" || bodies[0].Value != 95 {
		t.Fatalf("want one firing for web-1 only, got %+v", bodies)
	}
	// Hysteresis: 85 is under 90 but over clear (80): still firing.
	w.report("web-1", 85, 10*time.Second)
	w.step(e)
	if st, _ := w.state(alert.SeriesKey(r.ID, "web-1", "")); st.State != alert.StateFiring {
		t.Fatalf("85 with clear 80: state %+v", st)
	}
	w.clk.Add(10 * time.Second)
	w.report("web-1", 70, 10*time.Second)
	w.step(e)
	if bodies = rc.bodies(t); len(bodies) != 2 || bodies[1].Status != "resolved" || bodies[1].Value != 70 {
		t.Fatalf("want resolved at 70, got %+v", bodies)
	}
}

// TestSilenceSuppressesButKeepsState: a silenced host going down changes
// state but sends nothing.
func TestSilenceSuppressesButKeepsState(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rc := newReceiver(t)
	w.channel("ops", "webhook+"+rc.URL)
	r := w.rule(`{"name":"down","metric":"nodata","for":"10s","servers":["*"],"channels":["ops"],"group":"0s"}`)
	if _, err := w.alerts.CreateSilence(context.Background(), alert.Silence{Servers: []string{"web-1"}, Until: w.clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e := w.evaluator()
	w.report("web-1", 1, 10*time.Second)
	w.report("web-2", 1, 10*time.Second)
	for range 12 {
		w.clk.Add(5 * time.Second)
		w.step(e)
	}
	if st, _ := w.state(alert.SeriesKey(r.ID, "web-1", "")); st.State != alert.StateFiring {
		t.Fatalf("silenced series state %+v, want firing", st)
	}
	bodies := rc.bodies(t)
	if len(bodies) != 1 || bodies[0].ServerID != "web-2" {
		t.Fatalf("want only web-2's notification, got %+v", bodies)
	}
}

// TestStormGroupsPerChannel: 50 hosts losing power together (last samples
// spread over a 10 s interval) give each channel one message naming all
// 50, not 50 messages; one channel is ntfy through shoutrrr, against a
// local receiver speaking its protocol.
func TestStormGroupsPerChannel(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	hook, ntfy := newReceiver(t), newReceiver(t)
	ntfy.reply = `{"id":"m1","time":1700000000,"event":"message","topic":"vitals-alerts"}` // as ntfy answers
	w.channel("ops", "webhook+"+hook.URL)
	w.channel("phone", "ntfy://"+strings.TrimPrefix(ntfy.URL, "http://")+"/vitals-alerts?scheme=http")
	w.rule(`{"name":"rack down","metric":"nodata","for":"30s","servers":["rack1-*"],"channels":["ops","phone"]}`)
	e := w.evaluator()
	for i := range 50 {
		w.reportAt(fmt.Sprintf("rack1-%02d", i), 5, 10*time.Second, w.clk.Now().Add(time.Duration(i%10)*time.Second))
	}
	for range 40 {
		w.clk.Add(5 * time.Second)
		w.step(e)
	}
	bodies := hook.bodies(t)
	if len(bodies) != 1 || bodies[0].Count != 50 || len(bodies[0].Alerts) != 50 {
		t.Fatalf("webhook: %d messages (counts %v), want one naming 50 series", len(bodies), counts(bodies))
	}
	got := ntfy.got()
	if len(got) != 1 {
		ds, _ := w.alerts.Deliveries(context.Background(), 10)
		t.Fatalf("ntfy: %d messages, want 1; deliveries %+v", len(got), ds)
	}
	if !strings.Contains(string(got[0].body), "50 series") || !strings.Contains(string(got[0].body), "rack1-00") {
		t.Errorf("ntfy message %s", got[0].body)
	}
}

func counts(bs []notify.WebhookBody) []int {
	var out []int
	for _, b := range bs {
		out = append(out, b.Count)
	}
	return out
}

// TestFailingChannelRetriesWithoutBlockingOthers: a channel answering 500
// is retried with backoff and recorded on every attempt; the other
// channel gets its message at once.
func TestFailingChannelRetriesWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	bad, good := newReceiver(t), newReceiver(t)
	bad.status = func(n int) int {
		if n < 3 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	}
	w.channel("bad", "webhook+"+bad.URL+"/secret-token-path")
	w.channel("good", "webhook+"+good.URL)
	w.rule(`{"name":"down","metric":"nodata","for":"0s","servers":["*"],"channels":["bad","good"],"group":"0s"}`)
	e := w.evaluator()
	w.report("web-1", 1, 10*time.Second)
	w.clk.Add(20 * time.Second)
	w.step(e)
	if len(good.got()) != 1 || len(bad.got()) != 1 {
		t.Fatalf("good %d, bad %d requests after the first round", len(good.got()), len(bad.got()))
	}
	for range 3 {
		w.clk.Add(15 * time.Minute) // past any backoff
		if _, err := e.Deliver(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(bad.got()) != 3 || len(good.got()) != 1 {
		t.Fatalf("bad got %d attempts, good %d; want 3 and 1", len(bad.got()), len(good.got()))
	}
	ds, _ := w.alerts.Deliveries(context.Background(), 10)
	var fails, oks int
	for _, d := range ds {
		if d.OK {
			oks++
		} else {
			fails++
			if d.NextAt == nil || !strings.Contains(d.Error, "500") || strings.Contains(d.Error, "secret-token") {
				t.Errorf("failed attempt recorded as %+v", d)
			}
		}
	}
	if fails != 2 || oks != 2 {
		t.Fatalf("deliveries %+v", ds)
	}
	if strings.Contains(w.logs.String(), "secret-token") {
		t.Fatal("a channel URL reached the log")
	}
}

// TestThreeEvaluatorsNotifyExactlyOnce runs three evaluators at once, each
// evaluating and delivering on every tick, through a storm of 30 hosts
// going down and coming back, twice: every channel gets each transition
// of each series exactly once, none missed, none doubled.
func TestThreeEvaluatorsNotifyExactlyOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := newReceiver(t), newReceiver(t)
	w.channel("a", "webhook+"+a.URL)
	w.channel("b", "webhook+"+b.URL)
	w.rule(`{"name":"down","metric":"nodata","for":"20s","servers":["*"],"channels":["a","b"],"group":"10s"}`)
	evs := []*evaluator.Evaluator{w.evaluator(), w.evaluator(), w.evaluator()}
	hosts := make([]string, 30)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("h%02d", i)
	}
	tick := func(up bool) {
		w.clk.Add(5 * time.Second)
		if up {
			for _, h := range hosts {
				w.report(h, 1, 10*time.Second)
			}
		}
		var wg sync.WaitGroup
		for _, e := range evs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 2 {
					if _, err := e.Evaluate(context.Background()); err != nil {
						t.Error(err)
					}
					if _, err := e.Deliver(context.Background()); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
	}
	for range 2 {
		for range 4 {
			tick(true)
		}
		for range 16 { // 80 s down
			tick(false)
		}
		for range 8 { // 40 s back
			tick(true)
		}
	}
	for _, rc := range []*receiver{a, b} {
		seen := map[string]int{}
		for _, body := range rc.bodies(t) {
			for _, al := range body.Alerts {
				seen[body.Status+" "+al.ServerID+" "+al.StartsAt.String()]++
			}
		}
		var firing, resolved int
		for k, n := range seen {
			if n != 1 {
				t.Errorf("%s notified %d times", k, n)
			}
			if strings.HasPrefix(k, "firing") {
				firing++
			} else {
				resolved++
			}
		}
		if firing != 60 || resolved != 60 {
			t.Errorf("channel got %d firing and %d resolved series notices, want 60 and 60 (30 hosts, 2 outages)", firing, resolved)
		}
	}
	if ds, _ := w.alerts.Deliveries(context.Background(), 1000); slices.ContainsFunc(ds, func(d alert.Delivery) bool { return !d.OK }) {
		t.Error("a delivery failed")
	}
}

// TestInstanceRules: an instance rule selects instances by name; a
// workload that stops reporting while its host goes on fires, and an
// instance threshold compares the instance's own metric.
func TestInstanceRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	rc := newReceiver(t)
	w.channel("ops", "webhook+"+rc.URL)
	w.rule(`{"name":"db gone","metric":"nodata","for":"20s","servers":["web-1"],"instances":["db*"],"channels":["ops"],"group":"0s"}`)
	w.rule(`{"name":"nginx mem","metric":"memoryUsagePercent","op":">","value":80,"for":"0s","servers":["*"],"instances":["nginx"],"channels":["ops"],"group":"0s"}`)
	e := w.evaluator()
	report := func(withDB bool) {
		s := metric.Sample{CollectedAt: w.clk.Now().Truncate(time.Second), RAMTotalBytes: 2, RAMUsedBytes: 1, RAMAvailableBytes: 1, RAMUsagePercent: 50,
			Instances: []metric.InstanceSample{{Name: "nginx", MemoryUsedBytes: 9, MemoryLimitBytes: 10, MemoryUsagePercent: 90}}}
		if withDB {
			s.Instances = append(s.Instances, metric.InstanceSample{Name: "db-main", MemoryUsagePercent: 10})
		}
		if _, err := w.metrics.Ingest(context.Background(), "web-1", []metric.Sample{s}); err != nil {
			t.Fatal(err)
		}
		_ = w.metrics.RecordInterval(context.Background(), "web-1", 10*time.Second)
	}
	report(true)
	for i := range 12 {
		w.clk.Add(5 * time.Second)
		if i%2 == 1 {
			report(false) // the host goes on; db-main does not
		}
		w.step(e)
	}
	var names []string
	for _, b := range rc.bodies(t) {
		names = append(names, b.Rule.Name+":"+b.Alerts[0].InstanceName)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"db gone:db-main", "nginx mem:nginx"}) {
		t.Fatalf("notifications %v", names)
	}
}
