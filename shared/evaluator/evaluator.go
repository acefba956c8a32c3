// Package evaluator turns rules and the newest state of every series into
// alert transitions and delivers the resulting notifications. It is
// stateless: everything lives in Redis (alert.Store and the metric store),
// so any number of evaluators may run at once, on Lambda or as
// long-running loops, and each transition is still made, and queued for
// each channel, exactly once (the store's compare-and-set), and each
// queued message is sent by one of them at a time (the store's lease).
//
// A pass reads only the newest state: the servers index (last-seen
// times), the announced intervals, the latest snapshot of each server a
// threshold rule selects, and the state of every series that is not ok.
// Its cost is O(servers + non-ok series), whatever the history holds.
package evaluator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Metrics is what a pass reads of the metric store; redisstore.Store
// implements it.
type Metrics interface {
	Heartbeats(ctx context.Context) ([]alert.Heartbeat, error)
	InstanceBeats(ctx context.Context) ([]alert.InstanceBeat, error)
	LatestServers(ctx context.Context, ids []string) (map[string]metric.ServerMetric, error)
	LatestInstances(ctx context.Context, ids []string) (map[string]metric.InstanceMetric, error)
}

// Sender delivers one message to one channel; shared/notify implements it.
type Sender interface {
	Send(ctx context.Context, c alert.Channel, m alert.Message) error
}

// Config tunes an Evaluator; zero fields take the defaults.
type Config struct {
	// DefaultInterval is assumed for a server that never announced its
	// reporting interval (reporters before it did): 10 s.
	DefaultInterval time.Duration
	// Lease is how long a claimed message is hidden from other senders:
	// 60 s, well over SendTimeout.
	Lease time.Duration
	// SendTimeout bounds one delivery attempt: 10 s.
	SendTimeout time.Duration
	// MaxAttempts per message before it is given up (recorded as failed):
	// 8, about 20 minutes of retries with backoff.
	MaxAttempts int
	// Concurrency bounds parallel deliveries: 16.
	Concurrency int
	// Wait sleeps until t or ctx's end; Once uses it between deliveries.
	// Default: a real timer (tests on a simulated clock advance it).
	Wait func(ctx context.Context, t time.Time) error
}

func (c *Config) defaults() {
	if c.DefaultInterval <= 0 {
		c.DefaultInterval = 10 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = time.Minute
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 10 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
}

// wait is the real Config.Wait for a clock now.
func wait(now func() time.Time) func(context.Context, time.Time) error {
	return func(ctx context.Context, t time.Time) error {
		tm := time.NewTimer(max(t.Sub(now()), 20*time.Millisecond))
		defer tm.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tm.C:
			return nil
		}
	}
}

// Evaluator evaluates rules and delivers notifications. Safe for
// concurrent use, and any number may share one Redis.
type Evaluator struct {
	metrics Metrics
	store   alert.Store
	sender  Sender
	cfg     Config
	logger  *slog.Logger
	now     func() time.Time
}

// New returns an Evaluator; now is the clock (time.Now when nil).
func New(m Metrics, s alert.Store, send Sender, cfg Config, logger *slog.Logger, now func() time.Time) *Evaluator {
	cfg.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if cfg.Wait == nil {
		cfg.Wait = wait(now)
	}
	return &Evaluator{metrics: m, store: s, sender: send, cfg: cfg, logger: logger, now: now}
}

// Stats count what one pass did.
type Stats struct {
	Rules       int
	Series      int
	Transitions int // applied by this evaluator
	Lost        int // decided, but another evaluator changed the series first
	Notices     int
}

// noDataGrace keeps a healthy host from going pending between two samples
// when a report arrives a little after its interval (transport, clock
// jitter): a series is late only past interval + min(grace, for).
const noDataGrace = 5 * time.Second

// Evaluate runs one pass over every rule and series.
func (e *Evaluator) Evaluate(ctx context.Context) (Stats, error) {
	var st Stats
	now := e.now().UTC()
	pass, err := e.store.Load(ctx, now)
	if err != nil {
		return st, fmt.Errorf("load alert state: %w", err)
	}
	st.Rules = len(pass.Rules)
	if len(pass.Rules) == 0 && len(pass.States) == 0 {
		return st, nil
	}
	hbs, err := e.metrics.Heartbeats(ctx)
	if err != nil {
		return st, fmt.Errorf("read heartbeats: %w", err)
	}
	v := view{hbs: map[string]alert.Heartbeat{}, byServer: map[string][]alert.InstanceBeat{}}
	for _, hb := range hbs {
		v.hbs[hb.ServerID] = hb
	}
	if slices.ContainsFunc(pass.Rules, func(r alert.Rule) bool { return r.ForInstances() }) {
		ibs, err := e.metrics.InstanceBeats(ctx)
		if err != nil {
			return st, fmt.Errorf("read instance beats: %w", err)
		}
		for _, ib := range ibs {
			v.byServer[ib.ServerID] = append(v.byServer[ib.ServerID], ib)
		}
	}
	if err := e.readLatest(ctx, pass.Rules, hbs, &v); err != nil {
		return st, err
	}

	visited := map[string]bool{}
	var ts []alert.Transition
	for i := range pass.Rules {
		r := &pass.Rules[i]
		for _, hb := range hbs {
			if !r.MatchServer(hb.ServerID) {
				continue
			}
			if !r.ForInstances() {
				st.Series++
				base := alert.Alert{ServerID: hb.ServerID}
				o := e.serverObs(r, hb, &v, now)
				if t, ok := e.decide(r, base, pass, o, now, visited); ok {
					ts = append(ts, t)
				}
				continue
			}
			for _, ib := range v.byServer[hb.ServerID] {
				if !r.MatchInstance(ib.ID, ib.Name) {
					continue
				}
				st.Series++
				base := alert.Alert{ServerID: hb.ServerID, InstanceID: ib.ID, InstanceName: ib.Name}
				o := e.instanceObs(r, hb, ib, &v, now)
				if t, ok := e.decide(r, base, pass, o, now, visited); ok {
					ts = append(ts, t)
				}
			}
		}
	}
	// Series whose rule was deleted or no longer selects them (or whose
	// server left the index) go back to ok without a notification.
	for key := range pass.States {
		if !visited[key] {
			ts = append(ts, alert.Transition{Key: key, Seq: pass.Seq})
		}
	}
	for i := range ts {
		t := &ts[i]
		t.Seq = pass.Seq
		ok, err := e.store.Transition(ctx, *t)
		if err != nil {
			return st, fmt.Errorf("apply transition of %s: %w", t.Key, err)
		}
		if !ok {
			st.Lost++
			continue
		}
		st.Transitions++
		st.Notices += len(t.Notices)
		e.logTransition(t)
	}
	return st, nil
}

func (e *Evaluator) logTransition(t *alert.Transition) {
	switch {
	case t.To != nil:
		e.logger.Info("alert", "series", t.Key, "state", t.To.State, "value", t.To.Value, "notices", len(t.Notices))
	case t.Resolved != nil:
		e.logger.Info("alert", "series", t.Key, "state", alert.StateResolved, "notices", len(t.Notices))
	default:
		e.logger.Debug("alert back to ok", "series", t.Key)
	}
}

// view is what a pass read of the metric store.
type view struct {
	hbs       map[string]alert.Heartbeat
	byServer  map[string][]alert.InstanceBeat
	servers   map[string]metric.ServerMetric
	instances map[string]metric.InstanceMetric
}

// readLatest reads the latest point of every series a threshold rule
// selects, in one pipeline per kind.
func (e *Evaluator) readLatest(ctx context.Context, rules []alert.Rule, hbs []alert.Heartbeat, v *view) error {
	sset, iset := map[string]bool{}, map[string]bool{}
	for i := range rules {
		r := &rules[i]
		if r.IsNoData() {
			continue
		}
		for _, hb := range hbs {
			if !r.MatchServer(hb.ServerID) {
				continue
			}
			if !r.ForInstances() {
				sset[hb.ServerID] = true
				continue
			}
			for _, ib := range v.byServer[hb.ServerID] {
				if r.MatchInstance(ib.ID, ib.Name) {
					iset[ib.ID] = true
				}
			}
		}
	}
	var err error
	if len(sset) > 0 {
		if v.servers, err = e.metrics.LatestServers(ctx, setList(sset)); err != nil {
			return fmt.Errorf("read latest servers: %w", err)
		}
	}
	if len(iset) > 0 {
		if v.instances, err = e.metrics.LatestInstances(ctx, setList(iset)); err != nil {
			return fmt.Errorf("read latest instances: %w", err)
		}
	}
	return nil
}

func setList(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// obs is what a pass observed of one series.
type obs struct {
	value    float64
	hasValue bool // a threshold rule has a fresh value to judge
	lastSeen time.Time
	interval time.Duration
}

func (e *Evaluator) interval(hb alert.Heartbeat) time.Duration {
	if hb.Interval > 0 {
		return hb.Interval
	}
	return e.cfg.DefaultInterval
}

// fresh reports whether a sample at `at` still speaks for the series: a
// threshold is not judged on the last numbers of a host that went silent
// (a nodata rule covers that).
func fresh(at, now time.Time, interval time.Duration) bool {
	return now.Sub(at) <= max(3*interval, 2*time.Minute)
}

func (e *Evaluator) serverObs(r *alert.Rule, hb alert.Heartbeat, v *view, now time.Time) obs {
	o := obs{lastSeen: hb.LastSeen, interval: e.interval(hb)}
	if r.IsNoData() {
		return o
	}
	m, ok := v.servers[hb.ServerID]
	if !ok || !fresh(m.CollectedAt, now, o.interval) {
		return o
	}
	f, _ := alert.FieldOf(r.Metric, false)
	o.value, o.hasValue = f.Value(&m)
	return o
}

func (e *Evaluator) instanceObs(r *alert.Rule, hb alert.Heartbeat, ib alert.InstanceBeat, v *view, now time.Time) obs {
	o := obs{lastSeen: ib.LastSeen, interval: e.interval(hb)}
	if r.IsNoData() {
		return o
	}
	m, ok := v.instances[ib.ID]
	if !ok || !fresh(m.CollectedAt, now, o.interval) {
		return o
	}
	f, _ := alert.FieldOf(r.Metric, true)
	o.value, o.hasValue = f.Value(&m)
	return o
}

// decide returns the transition of one series, if it has one.
func (e *Evaluator) decide(r *alert.Rule, base alert.Alert, pass alert.Pass, o obs, now time.Time, visited map[string]bool) (alert.Transition, bool) {
	key := alert.SeriesKey(r.ID, base.ServerID, base.InstanceID)
	visited[key] = true
	base.Key, base.RuleID, base.Rule, base.Metric = key, r.ID, r.Name, r.Metric
	var cur *alert.Alert
	if a, ok := pass.States[key]; ok {
		cur = &a
	}
	var s step
	if r.IsNoData() {
		s = noData(r, base, cur, o, now)
	} else {
		s = threshold(r, base, cur, o, now)
	}
	if !s.change {
		return alert.Transition{}, false
	}
	t := alert.Transition{Key: key, To: s.to, Resolved: s.resolved}
	if s.notify != "" && !silenced(pass.Silences, r, base.ServerID, now) {
		a := s.resolved
		if a == nil {
			a = s.to
		}
		for _, ch := range r.Channels {
			t.Notices = append(t.Notices, alert.Notice{Channel: ch, Rule: *r, Status: s.notify, At: s.at, Alert: *a})
		}
	}
	return t, true
}

func silenced(ss []alert.Silence, r *alert.Rule, serverID string, now time.Time) bool {
	return slices.ContainsFunc(ss, func(s alert.Silence) bool { return s.Silences(r, serverID, now) })
}

// step is a decided change of one series.
type step struct {
	change   bool
	to       *alert.Alert // nil: back to ok
	resolved *alert.Alert
	notify   string    // "firing", "resolved" or "" for none
	at       time.Time // the event's own time, which groups are timed from
}

func pending(base alert.Alert, startsAt, now time.Time, v float64) step {
	a := base
	a.State, a.Since, a.StartsAt, a.Value = alert.StatePending, now, startsAt, v
	return step{change: true, to: &a}
}

func firing(base alert.Alert, startsAt, now time.Time, v float64) step {
	a := base
	a.State, a.Since, a.StartsAt, a.Value, a.NotifiedAt = alert.StateFiring, now, startsAt, v, now
	return step{change: true, to: &a, notify: "firing", at: startsAt}
}

func resolve(cur *alert.Alert, now time.Time, v float64) step {
	a := *cur
	end := now
	a.State, a.Since, a.EndsAt, a.Value, a.Version = alert.StateResolved, now, &end, v, 0
	return step{change: true, resolved: &a, notify: "resolved", at: now}
}

// repeat re-notifies a firing alert whose last notice is Repeat old.
func repeat(r *alert.Rule, cur *alert.Alert, now time.Time, v float64) step {
	if r.Repeat == 0 || now.Sub(cur.NotifiedAt) < r.Repeat.D() {
		return step{}
	}
	a := *cur
	a.NotifiedAt, a.Value = now, v
	return step{change: true, to: &a, notify: "firing", at: now}
}

// threshold: ok → pending when the condition holds, → firing once it has
// held For (a dip back while pending returns to ok silently: no flap
// notifications), → resolved when it no longer holds (against Clear when
// set). Without a fresh value nothing changes.
func threshold(r *alert.Rule, base alert.Alert, cur *alert.Alert, o obs, now time.Time) step {
	if !o.hasValue {
		return step{}
	}
	wasFiring := cur != nil && cur.State == alert.StateFiring
	cond := r.Firing(o.value, wasFiring)
	switch {
	case cur == nil && !cond:
		return step{}
	case cur == nil && r.For == 0:
		return firing(base, now, now, o.value)
	case cur == nil:
		return pending(base, now, now, o.value)
	case cur.State == alert.StatePending && !cond:
		return step{change: true}
	case cur.State == alert.StatePending && now.Sub(cur.StartsAt) >= r.For.D():
		return firing(base, cur.StartsAt.Add(r.For.D()), now, o.value)
	case cur.State == alert.StatePending:
		return step{}
	case !cond:
		return resolve(cur, now, o.value)
	default:
		return repeat(r, cur, now, o.value)
	}
}

// noData: a series is late once it has sent nothing for its interval
// (plus a little grace); it fires at lastSeen + interval + For, the
// deadline, and resolves when it reports again. Value is the seconds
// since the last report.
func noData(r *alert.Rule, base alert.Alert, cur *alert.Alert, o obs, now time.Time) step {
	silent := now.Sub(o.lastSeen)
	late := silent > o.interval+min(noDataGrace, r.For.D())
	deadline := o.lastSeen.Add(o.interval + r.For.D())
	v := silent.Round(time.Second).Seconds()
	switch {
	case cur == nil && !late:
		return step{}
	case cur == nil && !now.Before(deadline):
		return firing(base, deadline, now, v)
	case cur == nil:
		return pending(base, o.lastSeen.Add(o.interval), now, v)
	case cur.State == alert.StatePending && !late:
		return step{change: true}
	case cur.State == alert.StatePending && !now.Before(deadline):
		return firing(base, deadline, now, v)
	case cur.State == alert.StatePending:
		return step{}
	case !late:
		return resolve(cur, now, v)
	default:
		return repeat(r, cur, now, v)
	}
}

// Deliver sends every message due now, each to its channel, in parallel
// (bounded); a slow or failing channel delays only its own messages. A
// failed attempt is retried with backoff up to MaxAttempts. It returns
// how many messages it attempted.
func (e *Evaluator) Deliver(ctx context.Context) (int, error) {
	msgs, err := e.store.Claim(ctx, e.now(), e.cfg.Lease, 100)
	if err != nil {
		return 0, fmt.Errorf("claim messages: %w", err)
	}
	sem := make(chan struct{}, e.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, m := range msgs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			e.deliver(ctx, m)
		}()
	}
	wg.Wait()
	return len(msgs), nil
}

func (e *Evaluator) deliver(ctx context.Context, m alert.Message) {
	d := alert.Delivery{Group: m.ID, Attempt: m.Attempt, Channel: m.Channel, RuleID: m.Rule.ID, Rule: m.Rule.Name,
		Status: m.Status, Series: make([]string, 0, len(m.Alerts)), At: e.now().UTC()}
	for i := range m.Alerts {
		d.Series = append(d.Series, m.Alerts[i].Series())
	}
	ch, err := e.store.Channel(ctx, m.Channel)
	if errors.Is(err, metric.ErrNotFound) {
		d.Error = "channel deleted; message dropped"
		e.finish(ctx, m, d)
		return
	}
	if err == nil {
		sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		start := time.Now()
		err = e.sender.Send(sctx, ch, m)
		cancel()
		d.DurationMs = time.Since(start).Milliseconds()
	}
	if err == nil {
		d.OK = true
		e.finish(ctx, m, d)
		e.logger.Info("notification sent", "channel", m.Channel, "rule", m.Rule.Name, "status", m.Status, "series", len(m.Alerts), "attempt", m.Attempt)
		return
	}
	d.Error = alert.Scrub(err.Error(), ch.URL, ch.Secret)
	if m.Attempt >= e.cfg.MaxAttempts {
		d.Error += fmt.Sprintf(" (gave up after %d attempts)", m.Attempt)
		e.logger.Error("notification failed for good", "channel", m.Channel, "rule", m.Rule.Name, "attempt", m.Attempt, "err", d.Error)
		e.finish(ctx, m, d)
		return
	}
	next := e.now().Add(Backoff(m.Attempt)).UTC()
	d.NextAt = &next
	e.logger.Warn("notification failed; will retry", "channel", m.Channel, "rule", m.Rule.Name, "attempt", m.Attempt, "next", next, "err", d.Error)
	if err := e.store.Retry(ctx, m, d, next); err != nil {
		// The lease runs out and the message is claimed again.
		e.logger.Warn("record retry", "channel", m.Channel, "err", err)
	}
}

func (e *Evaluator) finish(ctx context.Context, m alert.Message, d alert.Delivery) {
	if err := e.store.Finish(ctx, m, d); err != nil {
		// Unrecorded, the message is claimed again when its lease ends:
		// at least once, so possibly twice.
		e.logger.Warn("record delivery", "channel", m.Channel, "err", err)
	}
}

// Backoff is the wait after failed attempt n (1-based): 10 s doubling to
// at most 10 min, with ±20 % jitter so channels failing together do not
// retry in lockstep.
func Backoff(n int) time.Duration {
	d := 10 * time.Second << min(max(n-1, 0), 6)
	d = min(d, 10*time.Minute)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64())) //nolint:gosec // jitter, not a secret
}

// Run evaluates every `every` and delivers as messages come due, until
// ctx ends: the long-running mode. Evaluation and delivery run in their
// own goroutines, so a slow channel never delays a pass. Errors (Redis
// away) are logged and the loop goes on.
func (e *Evaluator) Run(ctx context.Context, every time.Duration) error {
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.deliverLoop(ctx, every, kick)
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		start := time.Now()
		st, err := e.Evaluate(ctx)
		if err != nil && ctx.Err() == nil {
			e.logger.Warn("evaluation failed", "err", err)
		} else if st.Notices > 0 {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
		e.logger.Debug("evaluated", "rules", st.Rules, "series", st.Series, "transitions", st.Transitions, "lost", st.Lost, "duration", time.Since(start))
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// deliverLoop delivers what is due, then sleeps until the next message
// comes due (at most `every`) or a pass queued something.
func (e *Evaluator) deliverLoop(ctx context.Context, every time.Duration, kick <-chan struct{}) {
	for ctx.Err() == nil {
		if _, err := e.Deliver(ctx); err != nil && ctx.Err() == nil {
			e.logger.Warn("delivery failed", "err", err)
		}
		wait := every
		if next, err := e.store.NextDue(ctx); err == nil && !next.IsZero() {
			wait = min(max(next.Sub(e.now()), 20*time.Millisecond), every)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// Once is the scheduled (Lambda) mode: one pass, then deliver what is
// due and what comes due before until, so a group window that closes
// within this invocation does not wait for the next one.
func (e *Evaluator) Once(ctx context.Context, until time.Time) (Stats, error) {
	st, err := e.Evaluate(ctx)
	if err != nil {
		return st, err
	}
	for {
		if _, err := e.Deliver(ctx); err != nil {
			return st, err
		}
		next, err := e.store.NextDue(ctx)
		if err != nil {
			return st, fmt.Errorf("next due: %w", err)
		}
		if next.IsZero() || next.After(until) {
			return st, nil
		}
		if e.cfg.Wait(ctx, next) != nil {
			return st, nil
		}
	}
}
