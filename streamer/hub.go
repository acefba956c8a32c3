package streamer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/shared/metric"
)

// kind says which series a topic follows.
type kind uint8

const (
	kindServer kind = iota
	kindInstance
)

func (k kind) String() string {
	if k == kindInstance {
		return "instance"
	}
	return "server"
}

// frame is one metric ready for the wire, encoded once per message for
// every client that receives it.
type frame struct {
	at     int64  // collectedAt, unix nanoseconds: orders frames per client (see supersedes)
	server string // an instance metric's serverId: its owner when it was stored
	ws     []byte // {"type":"server","id":"…","metric":{…}}
	sse    []byte // data: {…}\n\n (each stream writes its own "id:" line before it)
}

// supersedes reports whether a frame collected at next replaces one
// collected at cur (both unix nanoseconds) as the newest a topic or a client
// holds. It is the rule the whole project follows for "latest" (the store
// applies it to /latest and to what ingest publishes): a sample replaces the
// latest if it is newer by collectedAt, or if the latest is dated ahead of
// this process's clock. The second clause exists because a host whose clock
// steps back (an NTP correction) sends samples older than the one it dated
// in the future; without it that one sample would freeze the live view
// until the host's clock caught up with it, up to the 5-minute skew window.
// An equal collectedAt is the same sample (the store keeps one per instant)
// and never replaces, so a re-sent latest does not arrive twice.
func supersedes(cur, next int64, now func() time.Time) bool {
	if next == cur {
		return false
	}
	return next > cur || cur > now().UnixNano()
}

// newFrame builds the frames of one metric from its JSON (a ServerMetric
// or InstanceMetric, as the store publishes it).
func newFrame(k kind, seriesID string, payload []byte) (*frame, error) {
	var head struct {
		ID          string    `json:"id"`
		ServerID    string    `json:"serverId"`
		CollectedAt time.Time `json:"collectedAt"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		return nil, fmt.Errorf("decode %s metric: %w", k, err)
	}
	if bytes.ContainsAny(payload, "\r\n") {
		// An SSE data line must not contain a newline; our store never
		// publishes indented JSON, but a foreign publisher might.
		var buf bytes.Buffer
		if err := json.Compact(&buf, payload); err != nil {
			return nil, fmt.Errorf("compact %s metric: %w", k, err)
		}
		payload = buf.Bytes()
	}
	qid, _ := json.Marshal(seriesID)
	ws := make([]byte, 0, len(payload)+len(qid)+40)
	ws = append(ws, `{"type":"`...)
	ws = append(ws, k.String()...)
	ws = append(ws, `","id":`...)
	ws = append(ws, qid...)
	ws = append(ws, `,"metric":`...)
	ws = append(ws, payload...)
	ws = append(ws, '}')

	// The SSE event id is not the metric's: two samples of one 10 s bucket
	// share that, and each stream numbers its own events (see stream).
	sse := make([]byte, 0, len(payload)+8)
	sse = append(sse, "data: "...)
	sse = append(sse, payload...)
	sse = append(sse, "\n\n"...)
	return &frame{at: head.CollectedAt.UnixNano(), server: head.ServerID, ws: ws, sse: sse}, nil
}

// movedFrom reports whether f, a frame of a topic of kind k, belongs to
// another server than owner, the one a viewer's access was checked
// against. An instance can change owner (an operator rebinds it; its
// deriving server takes it back from a squatter), and a viewer allowed by
// the old owner's scope must not see the new owner's samples.
func (f *frame) movedFrom(k kind, owner string) bool {
	return k == kindInstance && f.server != "" && f.server != owner
}

// subscriber receives a topic's frames. deliver must not block: it keeps
// the frame as its client's pending one for the topic (replacing an older
// pending one, so a backlog coalesces) and wakes the client's writer.
type subscriber interface {
	deliver(f *frame)
}

// topic is one Redis channel and the local clients that follow it.
type topic struct {
	kind    kind
	id      string
	channel string

	// Guarded by hub.mu.
	subs       map[subscriber]struct{}
	idleSince  time.Time // when the last subscriber left; zero while followed
	subscribed bool      // SUBSCRIBE issued (go-redis re-issues it on reconnect)
	confirmed  bool      // Redis confirmed the subscription at least once

	last atomic.Pointer[frame] // newest frame seen, for late joiners
}

// offer records f as the topic's latest if it supersedes the current one.
func (t *topic) offer(f *frame, now func() time.Time) {
	for {
		cur := t.last.Load()
		if cur != nil && !supersedes(cur.at, f.at, now) {
			return
		}
		if t.last.CompareAndSwap(cur, f) {
			return
		}
	}
}

// hub owns the process's single Redis pub/sub connection. Each channel is
// subscribed once, however many local clients follow it, and unsubscribed
// UnsubscribeDelay after the last one leaves. SUBSCRIBE/UNSUBSCRIBE run on
// one reconciling goroutine so client handlers never wait on Redis, and
// their order on the connection is the order of the decisions.
type hub struct {
	ps       *redis.PubSub
	channels Channels
	store    metric.Store
	alerts   AlertSource // nil: no alert push
	alertsCh string      // alerts.EventsChannel(), subscribed for the process's life
	stats    *counters
	cfg      Config
	log      *slog.Logger
	now      func() time.Time

	mu        sync.RWMutex
	topics    map[string]*topic // by channel name
	alertSubs map[alertSubscriber]struct{}
	// alertsConfirmed: the events channel was confirmed once; a later
	// confirmation is a resubscription, after which alerts are re-read.
	alertsConfirmed bool

	wake      chan struct{}
	refreshes chan *topic // topics whose latest must be fetched and re-sent
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func newHub(client redis.UniversalClient, ch Channels, store metric.Store, alerts AlertSource, stats *counters, cfg Config, log *slog.Logger, now func() time.Time) *hub {
	h := &hub{
		now:       now,
		channels:  ch,
		store:     store,
		alerts:    alerts,
		alertsCh:  alertsChannel(alerts),
		alertSubs: map[alertSubscriber]struct{}{},
		stats:     stats,
		cfg:       cfg,
		log:       log,
		topics:    map[string]*topic{},
		wake:      make(chan struct{}, 1),
		refreshes: make(chan *topic, 1024),
		stop:      make(chan struct{}),
	}
	// No channel yet: go-redis connects lazily and re-subscribes every
	// channel it has been given whenever it reconnects.
	h.ps = client.Subscribe(context.Background())
	msgs := h.ps.ChannelWithSubscriptions(
		redis.WithChannelSize(cfg.PubSubBuffer),
		redis.WithChannelSendTimeout(cfg.PubSubSendTimeout),
		// A silent connection is pinged this often, so a Redis that went
		// away without closing the socket is noticed within seconds.
		redis.WithChannelHealthCheckInterval(3*time.Second),
	)
	h.wg.Add(3)
	go h.receive(msgs)
	go h.reconcile()
	go h.refresher()
	return h
}

func alertsChannel(a AlertSource) string {
	if a == nil {
		return ""
	}
	return a.EventsChannel()
}

// join adds sub to the topic of series (k, id), creating it (and asking for
// its SUBSCRIBE) on first use.
func (h *hub) join(k kind, id string, sub subscriber) *topic {
	ch := h.channels.ServerChannel(id)
	if k == kindInstance {
		ch = h.channels.InstanceChannel(id)
	}
	h.mu.Lock()
	t := h.topics[ch]
	if t == nil {
		t = &topic{kind: k, id: id, channel: ch, subs: map[subscriber]struct{}{}}
		h.topics[ch] = t
	}
	t.subs[sub] = struct{}{}
	t.idleSince = time.Time{}
	needSub := !t.subscribed
	h.mu.Unlock()
	if needSub {
		h.poke()
	}
	return t
}

// cached returns the newest frame the hub holds for a series, if any.
func (h *hub) cached(k kind, id string) *frame {
	ch := h.channels.ServerChannel(id)
	if k == kindInstance {
		ch = h.channels.InstanceChannel(id)
	}
	h.mu.RLock()
	t := h.topics[ch]
	h.mu.RUnlock()
	if t == nil {
		return nil
	}
	return t.last.Load()
}

// leave removes sub; the reconciler unsubscribes the channel once it has
// been idle for UnsubscribeDelay.
func (h *hub) leave(t *topic, sub subscriber) {
	h.mu.Lock()
	delete(t.subs, sub)
	if len(t.subs) == 0 {
		t.idleSince = time.Now()
	}
	h.mu.Unlock()
}

func (h *hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// channelCount is how many Redis channels are subscribed or pending.
func (h *hub) channelCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics)
}

// reconcile brings the Redis subscriptions in line with the topics: new
// topics are subscribed, idle ones unsubscribed and forgotten.
func (h *hub) reconcile() {
	defer h.wg.Done()
	if h.alerts != nil {
		// One channel for every alert transition, followed for the life of
		// the process (go-redis re-subscribes it after a reconnect, even
		// when this first attempt fails because Redis is down).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := h.ps.Subscribe(ctx, h.alertsCh); err != nil {
			h.log.Warn("redis subscribe to alert events failed; will subscribe on reconnect", "err", err)
		}
		cancel()
	}
	tick := time.NewTicker(min(time.Second, h.cfg.UnsubscribeDelay/2+time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-h.wake:
		case <-tick.C:
		}
		var add, drop []string
		now := time.Now()
		h.mu.Lock()
		for ch, t := range h.topics {
			switch {
			case len(t.subs) > 0 && !t.subscribed:
				t.subscribed = true
				add = append(add, ch)
			case len(t.subs) == 0 && !t.idleSince.IsZero() && now.Sub(t.idleSince) >= h.cfg.UnsubscribeDelay:
				delete(h.topics, ch)
				if t.subscribed {
					drop = append(drop, ch)
				}
			}
		}
		h.mu.Unlock()
		// Batches keep each command small even when thousands of clients
		// arrive at once.
		for chunk := range chunks(drop, 512) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// go-redis forgets the channels even when the command fails, so
			// a reconnect will not bring them back.
			if err := h.ps.Unsubscribe(ctx, chunk...); err != nil {
				h.log.Warn("redis unsubscribe failed", "channels", len(chunk), "err", err)
			}
			cancel()
		}
		for chunk := range chunks(add, 512) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			// go-redis remembers the channels even when the command fails
			// (Redis down): it subscribes them again when it reconnects, and
			// the confirmation then triggers a refresh.
			if err := h.ps.Subscribe(ctx, chunk...); err != nil {
				h.log.Warn("redis subscribe failed; will subscribe on reconnect", "channels", len(chunk), "err", err)
			}
			cancel()
		}
	}
}

func chunks(s []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// receive dispatches pub/sub traffic: messages are framed once and handed
// to every subscriber; subscription confirmations (the first one, and those
// go-redis gets when it re-subscribes after Redis restarted or failed over)
// schedule a refresh, because samples published while the subscription was
// down are lost to pub/sub.
func (h *hub) receive(msgs <-chan any) {
	defer h.wg.Done()
	for m := range msgs {
		switch m := m.(type) {
		case *redis.Message:
			h.stats.redisIn.Add(1)
			if h.alerts != nil && m.Channel == h.alertsCh {
				h.publishAlert([]byte(m.Payload))
				continue
			}
			h.mu.RLock()
			t := h.topics[m.Channel]
			h.mu.RUnlock()
			if t == nil {
				continue // unsubscribed meanwhile
			}
			f, err := newFrame(t.kind, t.id, []byte(m.Payload))
			if err != nil {
				h.log.Warn("ignoring malformed pub/sub message", "channel", m.Channel, "err", err)
				continue
			}
			h.publish(t, f)
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if h.alerts != nil && m.Channel == h.alertsCh {
				h.mu.Lock()
				again := h.alertsConfirmed
				h.alertsConfirmed = true
				h.mu.Unlock()
				if again {
					h.stats.resubscribe.Add(1)
					h.log.Info("redis alert subscription restored; re-reading alerts")
					h.wg.Add(1)
					go func() { defer h.wg.Done(); h.resyncAlerts() }()
				}
				continue
			}
			h.mu.Lock()
			t := h.topics[m.Channel]
			again := t != nil && t.confirmed
			if t != nil {
				t.confirmed = true
			}
			h.mu.Unlock()
			if t == nil {
				continue
			}
			if again {
				h.stats.resubscribe.Add(1)
				h.log.Info("redis subscription restored; re-sending latest", "channel", m.Channel)
			}
			select {
			case h.refreshes <- t:
			case <-h.stop:
				return
			}
		}
	}
}

// publish hands f to every subscriber of t.
func (h *hub) publish(t *topic, f *frame) {
	t.offer(f, h.now)
	h.mu.RLock()
	for s := range t.subs {
		s.deliver(f)
	}
	h.mu.RUnlock()
}

// refresher fetches the latest metric of topics whose subscription was
// (re)confirmed and re-sends it, with a few fetches in flight so a Redis
// restart under thousands of channels neither serialises nor floods.
func (h *hub) refresher() {
	defer h.wg.Done()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-h.stop:
			return
		case t := <-h.refreshes:
			select {
			case sem <- struct{}{}:
			case <-h.stop:
				return
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				h.refresh(t)
			}()
		}
	}
}

func (h *hub) refresh(t *topic) {
	// Right after Redis came back, the store's pooled connections may still
	// be the dead ones; retry for a while rather than leave clients stale.
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		f, err := h.latest(ctx, t.kind, t.id)
		cancel()
		switch {
		case err == nil:
			h.publish(t, f)
			return
		case isNotFound(err):
			return
		case !errors.Is(err, metric.ErrUnavailable) || attempt == 6:
			h.log.Warn("fetch latest after subscribe failed", "channel", t.channel, "err", err)
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

// latest reads the newest metric of a series from the store as a frame.
func (h *hub) latest(ctx context.Context, k kind, id string) (*frame, error) {
	var v any
	var err error
	if k == kindInstance {
		v, err = h.store.LatestInstance(ctx, id)
	} else {
		v, err = h.store.LatestServer(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode latest %s %s: %w", k, id, err)
	}
	return newFrame(k, id, b)
}

// close ends the subscription and the hub's goroutines.
func (h *hub) close() {
	h.closeOnce.Do(func() {
		close(h.stop)
		_ = h.ps.Close() // closes the message channel, ending receive
		h.wg.Wait()
	})
}
