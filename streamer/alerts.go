package streamer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// AlertSource is where the streamer reads alert state and hears of
// transitions (*alertstore.Store implements it).
type AlertSource interface {
	// Alerts lists pending, firing and recently resolved alerts.
	Alerts(ctx context.Context, now time.Time) ([]alert.Alert, error)
	// EventsChannel is the pub/sub channel every applied transition is
	// published on, as the JSON of the series' new state.
	EventsChannel() string
}

// alertQueueDepth is how many transitions of one series may wait for a
// client. Every transition matters (pending, then firing, then resolved),
// so alerts are not "newest only" like metrics; but a client that reads
// slower than one series changes keeps only the newest few, the newest
// state always last, instead of a backlog.
const alertQueueDepth = 4

// alertFrame is one alert state ready for the wire, encoded once for
// every client that receives it.
type alertFrame struct {
	key      string
	serverID string
	state    alert.State
	version  int64
	ws       []byte // {"type":"alert","key":…,"state":…,"version":…}
	sse      []byte // data: <the same JSON>\n\n
}

// newAlertFrame builds the frames of one event as the transition script
// publishes it (an alert.Alert's JSON with the version it stored).
func newAlertFrame(payload []byte) (*alertFrame, error) {
	var a alert.Alert
	if err := json.Unmarshal(payload, &a); err != nil {
		return nil, fmt.Errorf("decode alert event: %w", err)
	}
	if a.Key == "" || a.ServerID == "" || len(payload) < 2 || payload[0] != '{' {
		return nil, errors.New("decode alert event: no key or serverId")
	}
	if bytes.ContainsAny(payload, "\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, payload); err != nil {
			return nil, fmt.Errorf("compact alert event: %w", err)
		}
		payload = buf.Bytes()
	}
	ws := make([]byte, 0, len(payload)+16)
	ws = append(ws, `{"type":"alert",`...)
	ws = append(ws, payload[1:]...)
	sse := make([]byte, 0, len(ws)+8)
	sse = append(sse, "data: "...)
	sse = append(sse, ws...)
	sse = append(sse, "\n\n"...)
	return &alertFrame{key: a.Key, serverID: a.ServerID, state: a.State, version: a.Version, ws: ws, sse: sse}, nil
}

// alertFrameOf is the frame of a stored alert, shaped like an event.
func alertFrameOf(a alert.Alert) (*alertFrame, error) {
	a.Silenced, a.NotifiedAt = false, time.Time{}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	return newAlertFrame(b)
}

// active reports whether a state is one the page shows as an alert.
func active(s alert.State) bool { return s == alert.StatePending || s == alert.StateFiring }

// seen is what a client last accepted of a series.
type seen struct {
	version int64
	active  bool
}

// alertQueue is one client's pending alert frames: per series, up to
// alertQueueDepth transitions in order, never one older (by version) than
// what the client already accepted, so the snapshot read at subscribe and
// the live events it races with neither repeat nor go back in time. It has
// no lock of its own: its owner's guards it.
type alertQueue struct {
	last    map[string]seen
	pending map[string][]*alertFrame
	order   []string // series with pending frames, in arrival order
	held    bool     // subscribing: frames wait until "ok" is queued
}

func newAlertQueue() *alertQueue {
	return &alertQueue{last: map[string]seen{}, pending: map[string][]*alertFrame{}, held: true}
}

// offer queues f unless the client has it or a newer state of its series;
// it reports whether f was queued.
func (q *alertQueue) offer(f *alertFrame) bool {
	if s, ok := q.last[f.key]; ok && f.version <= s.version {
		return false
	}
	q.last[f.key] = seen{version: f.version, active: active(f.state)}
	q.push(f)
	if len(q.last) > 4096 {
		// Forget series that are over: what keeps a client from a stale
		// frame is the order of the pub/sub channel, the map only bridges
		// the snapshot. Bounded whatever the churn.
		for k, s := range q.last {
			if !s.active {
				delete(q.last, k)
			}
		}
	}
	return true
}

func (q *alertQueue) push(f *alertFrame) {
	p := q.pending[f.key]
	if len(p) == 0 {
		q.order = append(q.order, f.key)
	}
	if len(p) >= alertQueueDepth {
		p = append(p[:0], p[1:]...) // the oldest goes; the newest stays last
	}
	q.pending[f.key] = append(p, f)
}

// resync reconciles the client with a fresh snapshot (after the events
// subscription was restored, transitions in between are lost to pub/sub):
// each current alert is offered, and a series the client holds as active
// that is no longer in the snapshot gets an "ok" frame. The "ok" keeps the
// last version, so the next real transition of the series still passes.
func (q *alertQueue) resync(snap []*alertFrame, canRead func(string) bool) bool {
	woke := false
	in := make(map[string]bool, len(snap))
	for _, f := range snap {
		in[f.key] = true
		if canRead(f.serverID) && q.offer(f) {
			woke = true
		}
	}
	for k, s := range q.last {
		if !s.active || in[k] {
			continue
		}
		ok := alert.OKEvent(k)
		ok.Version = s.version
		if f, err := alertFrameOf(ok); err == nil {
			q.last[k] = seen{version: s.version}
			q.push(f)
			woke = true
		}
	}
	return woke
}

func (q *alertQueue) ready() bool { return !q.held && len(q.order) > 0 }

// drain hands every pending frame the client may read to yield, series by
// series (a series' transitions stay in order), and empties the queue.
func (q *alertQueue) drain(canRead func(string) bool, yield func(*alertFrame)) {
	if q.held {
		return
	}
	for _, k := range q.order {
		for _, f := range q.pending[k] {
			if canRead(f.serverID) {
				yield(f)
			}
		}
		delete(q.pending, k)
	}
	clear(q.order)
	q.order = q.order[:0]
}

// alertSubscriber receives alert frames; like subscriber.deliver, neither
// method may block.
type alertSubscriber interface {
	deliverAlert(f *alertFrame)
	resyncAlerts(snap []*alertFrame)
}

// ---- hub side ----

// joinAlerts adds sub to the alert followers. The events channel itself is
// subscribed once per process, when the hub starts.
func (h *hub) joinAlerts(sub alertSubscriber) {
	h.mu.Lock()
	h.alertSubs[sub] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) leaveAlerts(sub alertSubscriber) {
	h.mu.Lock()
	delete(h.alertSubs, sub)
	h.mu.Unlock()
}

// publishAlert hands an event to every alert follower.
func (h *hub) publishAlert(payload []byte) {
	f, err := newAlertFrame(payload)
	if err != nil {
		h.log.Warn("ignoring malformed alert event", "err", err)
		return
	}
	h.mu.RLock()
	for s := range h.alertSubs {
		s.deliverAlert(f)
	}
	h.mu.RUnlock()
}

// alertSnapshot reads the pending and firing alerts as frames.
func (h *hub) alertSnapshot(ctx context.Context) ([]*alertFrame, error) {
	all, err := h.alerts.Alerts(ctx, h.now())
	if err != nil {
		return nil, err
	}
	out := make([]*alertFrame, 0, len(all))
	for _, a := range all {
		if !active(a.State) {
			continue
		}
		f, err := alertFrameOf(a)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// resyncAlerts re-reads the alert state after the events subscription was
// restored and reconciles every follower with it.
func (h *hub) resyncAlerts() {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		snap, err := h.alertSnapshot(ctx)
		cancel()
		if err == nil {
			h.mu.RLock()
			for s := range h.alertSubs {
				s.resyncAlerts(snap)
			}
			h.mu.RUnlock()
			return
		}
		if !errors.Is(err, metric.ErrUnavailable) || attempt == 6 {
			h.log.Warn("re-read alerts after resubscribe failed", "err", err)
			return
		}
		select {
		case <-time.After(backoff):
			backoff *= 2
		case <-h.stop:
			return
		}
	}
}

// ---- WebSocket ----

// wsAlerts is a socket's alert subscription.
type wsAlerts struct{ c *wsClient }

func (a *wsAlerts) deliverAlert(f *alertFrame) {
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.alerts == nil || c.alertSub != a || c.claims == nil || !c.claims.CanRead(f.serverID) {
		return
	}
	if c.alerts.offer(f) {
		c.wakeLocked()
	}
}

func (a *wsAlerts) resyncAlerts(snap []*alertFrame) {
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.alerts == nil || c.alertSub != a || c.claims == nil {
		return
	}
	if c.alerts.resync(snap, c.claims.CanRead) {
		c.wakeLocked()
	}
}

// subscribeAlerts answers "ok", then the pending and firing alerts the
// token may read, then every transition of those as it applies.
func (c *wsClient) subscribeAlerts(ctx context.Context) {
	if c.s.hub.alerts == nil {
		c.replyError(errAlertsOff, "subscribe alerts")
		return
	}
	c.mu.Lock()
	if c.alerts != nil {
		c.mu.Unlock()
		c.reply("ok")
		return
	}
	sub := &wsAlerts{c: c}
	c.alerts, c.alertSub = newAlertQueue(), sub
	c.mu.Unlock()
	// Follow first, then read: an event that races the read is held and
	// the version order sorts the two out.
	c.s.hub.joinAlerts(sub)
	snap, err := c.s.hub.alertSnapshot(ctx)
	if err != nil {
		c.dropAlerts(sub)
		c.replyError(err, "alerts for subscribe")
		return
	}
	c.reply("ok")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.alertSub != sub || c.closed {
		return
	}
	q := c.alerts
	for _, f := range snap {
		if c.claims.CanRead(f.serverID) {
			q.offer(f)
		}
	}
	q.held = false
	if q.ready() {
		c.wakeLocked()
	}
}

// dropAlerts ends the alert subscription sub, if it is still the socket's;
// it reports whether it was.
func (c *wsClient) dropAlerts(sub *wsAlerts) bool {
	c.mu.Lock()
	mine := sub != nil && c.alertSub == sub
	if mine {
		c.alerts, c.alertSub = nil, nil
	}
	c.mu.Unlock()
	if sub != nil {
		c.s.hub.leaveAlerts(sub)
	}
	return mine
}

func (c *wsClient) unsubscribeAlerts() {
	c.mu.Lock()
	sub := c.alertSub
	c.mu.Unlock()
	if !c.dropAlerts(sub) {
		c.reply("error: not subscribed to alerts")
		return
	}
	c.reply("ok")
}

// errAlertsOff is the answer when the streamer was started without an
// alert store.
var errAlertsOff = metric.Errorf(metric.ErrUnavailable, "alerting is not configured")

// ---- SSE ----

// sseAlerts is one GET /api/alerts/stream.
type sseAlerts struct {
	notify chan struct{}
	claims *auth.Claims

	mu sync.Mutex
	q  *alertQueue
}

func (c *sseAlerts) deliverAlert(f *alertFrame) {
	if !c.claims.CanRead(f.serverID) {
		return
	}
	c.mu.Lock()
	queued := c.q.offer(f)
	c.mu.Unlock()
	if queued {
		c.wake()
	}
}

func (c *sseAlerts) resyncAlerts(snap []*alertFrame) {
	c.mu.Lock()
	woke := c.q.resync(snap, c.claims.CanRead)
	c.mu.Unlock()
	if woke {
		c.wake()
	}
}

func (c *sseAlerts) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *sseAlerts) take() []*alertFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*alertFrame
	c.q.drain(c.claims.CanRead, func(f *alertFrame) { out = append(out, f) })
	return out
}

// serveAlertsSSE streams alert states: the pending and firing alerts the
// token may read at once, then each transition as it applies, with
// heartbeat comments. Event data is the WebSocket "alert" frame's JSON.
func (s *Server) serveAlertsSSE(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.sseAuth(w, r)
	if !ok {
		return
	}
	if s.hub.alerts == nil {
		s.sseError(w, r, errAlertsOff)
		return
	}
	c := &sseAlerts{notify: make(chan struct{}, 1), claims: claims, q: newAlertQueue()}
	s.hub.joinAlerts(c)
	defer s.hub.leaveAlerts(c)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	snap, err := s.hub.alertSnapshot(ctx)
	cancel()
	if err != nil {
		s.sseError(w, r, err)
		return
	}
	c.mu.Lock()
	for _, f := range snap {
		if claims.CanRead(f.serverID) {
			c.q.offer(f)
		}
	}
	c.q.held = false
	c.mu.Unlock()
	sw, done, ok := s.openSSE(w, nil)
	if !ok {
		return
	}
	defer done()
	write := sw.write
	seq := lastEventID(r)
	var idBuf []byte
	flush := func() bool {
		for _, f := range c.take() {
			seq++
			idBuf = append(idBuf[:0], "id: "...)
			idBuf = strconv.AppendUint(idBuf, seq, 10)
			idBuf = append(idBuf, '\n')
			if !write(idBuf, f.sse) {
				return false
			}
			s.stats.messagesOut.Add(1)
		}
		return true
	}
	// The retry hint and a comment open the stream even with no alert.
	if !write([]byte("retry: "+strconv.FormatInt(s.cfg.SSERetry.Milliseconds(), 10)+"\n: alerts\n\n")) || !flush() {
		return
	}

	heartbeat := time.NewTicker(s.cfg.SSEHeartbeat)
	defer heartbeat.Stop()
	var expired <-chan time.Time
	if claims.ExpiresAt != nil {
		exp := time.NewTimer(claims.ExpiresAt.Sub(s.now()))
		defer exp.Stop()
		expired = exp.C
	}
	for {
		select {
		case <-c.notify:
			if !flush() {
				return
			}
		case <-heartbeat.C:
			if !write(sseHeartbeat) {
				return
			}
		case <-expired:
			_ = write(sseExpired)
			return
		case <-s.done:
			_ = write(sseShutdown)
			return
		case <-r.Context().Done():
			return
		}
	}
}
