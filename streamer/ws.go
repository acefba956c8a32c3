package streamer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Close codes the streamer uses, with fixed reasons (RFC 6455 §7.4).
const (
	statusGoingAway       = websocket.StatusGoingAway       // 1001: shutdown
	statusPolicyViolation = websocket.StatusPolicyViolation // 1008: auth timeout, token expired, slow client, ping timeout
)

// maxSubscriptions bounds what one socket may follow.
const maxSubscriptions = 256

// wsClient is one WebSocket. Its handler goroutine reads and answers
// commands; a writer goroutine that exists only while there is something to
// write sends the replies (in order) and, per subscription, the newest
// pending push, so an idle connection costs one goroutine and a burst of
// samples coalesces to the newest state instead of queueing. A client that
// does not read is found by the write deadline (WriteTimeout), never by how
// much was published.
type wsClient struct {
	s       *Server
	conn    *websocket.Conn
	netConn net.Conn // under conn: a socket deadline bounds each write

	mu        sync.Mutex
	drained   sync.Cond // on mu: replies were taken by the writer, or closed
	replies   [][]byte  // command answers not yet written, in order
	dirty     []*wsSub  // subscriptions with a pending push, in arrival order
	writing   bool
	closed    bool
	claims    *auth.Claims
	subs      map[subKey]*wsSub
	alerts    *alertQueue // "subscribe alerts": pending alert frames
	alertSub  *wsAlerts   // the hub's handle of that subscription
	authTimer *time.Timer
	expTimer  *time.Timer
	pingTimer *time.Timer
}

type subKey struct {
	kind kind
	id   string
}

// wsSub is one subscription of a socket. lastAt keeps the frames it passes
// on in the order supersedes defines, so re-sent latests never arrive twice
// or go back in time; pending holds the newest frame not yet written.
type wsSub struct {
	c        *wsClient
	key      subKey
	serverID string // the server whose scope covers it (an instance's server)

	// Guarded by c.mu.
	t       *topic // nil until hub.join returns
	lastAt  int64
	pending *frame
	gone    bool // unsubscribed: nothing more is sent for it
}

func (sub *wsSub) deliver(f *frame) { sub.c.push(sub, f) }

// maxPendingReplies is how many command answers may wait for the writer
// before the reader stops reading commands: a client that sends faster
// than it reads is slowed down to its own pace, not dropped for a count.
const maxPendingReplies = 16

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	sb := &smallBuffers{ResponseWriter: w}
	conn, err := websocket.Accept(sb, r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.OriginPatterns,
		// Metric messages are ~1 KB of JSON sent once per sample: a
		// per-connection deflate window would cost far more memory than it
		// saves in bandwidth.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has already answered (400/403/426).
		s.log.Debug("websocket upgrade refused", "err", err, "remote", r.RemoteAddr)
		return
	}
	conn.SetReadLimit(s.cfg.ReadLimit)
	c := &wsClient{s: s, conn: conn, netConn: sb.conn}
	c.drained.L = &c.mu
	if !s.register(c, nil) {
		_ = conn.Close(statusGoingAway, "server shutting down")
		return
	}
	s.stats.wsOpened.Add(1)
	s.stats.wsOpen.Add(1)
	c.mu.Lock()
	c.authTimer = time.AfterFunc(s.cfg.AuthTimeout, func() {
		c.mu.Lock()
		authed := c.claims != nil
		c.mu.Unlock()
		if !authed {
			c.closeWith(statusPolicyViolation, "authentication timeout")
		}
	})
	c.mu.Unlock()
	// The connection is hijacked: net/http is done with it. Reading on a
	// fresh goroutine lets the handler's deep stack, the request and the
	// server's buffers go, which is most of what an idle socket would
	// otherwise keep (see docs/PERFORMANCE.md).
	go c.readLoop()
}

// readLoop reads commands until the socket closes. Commands run on a
// short-lived goroutine so that the stack this long-lived one keeps stays
// as small as a blocked read needs, not as deep as JWT verification.
func (c *wsClient) readLoop() {
	s := c.s
	defer s.unregister(c, nil)
	defer s.stats.wsOpen.Add(-1)
	defer c.cleanup()
	done := make(chan struct{}, 1)
	for {
		typ, data, err := c.conn.Read(context.Background())
		if err != nil {
			if st := websocket.CloseStatus(err); st == -1 && !errors.Is(err, context.Canceled) {
				s.log.Debug("websocket read ended", "err", err)
			}
			return
		}
		s.stats.messagesIn.Add(1)
		s.stats.bytesIn.Add(int64(len(data)))
		switch {
		case typ != websocket.MessageText:
			c.reply("error: binary messages are not supported; send text commands")
		case !utf8.Valid(data):
			c.reply("error: message is not valid UTF-8")
		default:
			go func() { c.command(string(data)); done <- struct{}{} }()
			<-done
		}
		// Backpressure: read the next command only once the answers are
		// on their way. A peer that never reads is dropped by the write
		// deadline, which closes the client and ends this wait.
		c.mu.Lock()
		for !c.closed && len(c.replies) >= maxPendingReplies {
			c.drained.Wait()
		}
		c.mu.Unlock()
	}
}

// smallBuffers hands coder/websocket right-sized buffers when it hijacks
// the connection: net/http's are 4 KiB each way, while commands are a few
// hundred bytes and a metric push ~1 KiB. With 10,000 sockets that is the
// difference between ~80 MiB and ~25 MiB of buffers.
type smallBuffers struct {
	http.ResponseWriter
	conn net.Conn // the hijacked connection, for write deadlines
}

const (
	wsReadBuffer  = 512
	wsWriteBuffer = 2048 // one push (header + ~1.1 KiB JSON) per syscall
)

func (b *smallBuffers) Unwrap() http.ResponseWriter { return b.ResponseWriter }

func (b *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(b.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent right behind its upgrade request are already
	// in net/http's reader; serve them first.
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ := brw.Reader.Peek(n)
		conn = &prefixConn{Conn: conn, pending: bytes.Clone(pending)}
	}
	if n := brw.Writer.Buffered(); n > 0 {
		if err := brw.Writer.Flush(); err != nil {
			_ = conn.Close()
			return nil, nil, err
		}
	}
	b.conn = conn
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, wsReadBuffer), bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// prefixConn reads pending bytes before the connection's own.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// command runs one text command and queues its reply.
func (c *wsClient) command(msg string) {
	fields := strings.Fields(msg)
	if len(fields) == 0 {
		c.reply("error: empty command")
		return
	}
	cmd := strings.ToLower(fields[0])
	args := fields[1:]
	if cmd == "auth" {
		c.auth(args)
		return
	}
	c.mu.Lock()
	claims := c.claims
	c.mu.Unlock()
	if claims == nil {
		c.reply(`error: not authenticated: send "auth <JWT>" first`)
		return
	}
	// One bound for all of a command's Redis calls (subscribe instance
	// makes two): a Redis that answers the first slowly and then stops
	// must not stretch the answer past the 3 s every request promises.
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	switch cmd {
	case "sysinfo":
		c.sysinfo(ctx, claims, args)
	case "subscribe":
		if len(args) == 1 && strings.EqualFold(args[0], "alerts") {
			c.subscribeAlerts(ctx)
			return
		}
		c.subscribe(ctx, claims, args)
	case "unsubscribe":
		if len(args) == 1 && strings.EqualFold(args[0], "alerts") {
			c.unsubscribeAlerts()
			return
		}
		c.unsubscribe(args)
	case "servers":
		c.servers(ctx, claims)
	case "stats":
		c.replyJSON(c.s.Stats())
	case "ping":
		c.reply("pong")
	default:
		c.reply(fmt.Sprintf("error: unknown command %q (commands: auth, sysinfo, subscribe, unsubscribe, servers, stats, ping)", truncate(cmd, 32)))
	}
}

// commandTimeout bounds a WebSocket command's store calls together; the
// store's own request budget (2.5 s without an answer) bounds each call.
const commandTimeout = 2500 * time.Millisecond

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// auth verifies a token. A socket may authenticate again (say, with a
// fresh token before the old one expires); subscriptions the new token may
// not read are dropped.
func (c *wsClient) auth(args []string) {
	if len(args) != 1 {
		c.reply("error: usage: auth <JWT>")
		return
	}
	claims, err := c.s.verifier.Verify(args[0])
	if err != nil {
		c.replyError(err, "verify token")
		return
	}
	var dropped []*wsSub
	c.mu.Lock()
	first := c.claims == nil
	c.claims = claims
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	if c.expTimer != nil {
		c.expTimer.Stop()
		c.expTimer = nil
	}
	if claims.ExpiresAt != nil {
		c.expTimer = time.AfterFunc(claims.ExpiresAt.Sub(c.s.now()), func() {
			c.closeWith(statusPolicyViolation, "token expired")
		})
	}
	for k, sub := range c.subs {
		if !claims.CanRead(sub.serverID) {
			delete(c.subs, k)
			sub.gone = true
			dropped = append(dropped, sub)
		}
	}
	if first && !c.closed {
		c.schedulePing()
	}
	c.mu.Unlock()
	for _, sub := range dropped {
		c.s.hub.leave(sub.t, sub)
	}
	c.reply("ok")
}

// sysinfo answers the seed's JSON: for the streamer's own host without an
// argument, or from a server's latest snapshot with one.
func (c *wsClient) sysinfo(ctx context.Context, claims *auth.Claims, args []string) {
	switch len(args) {
	case 0:
		info, err := c.s.host.sysinfo(ctx)
		if err != nil {
			c.s.log.Error("sysinfo of this host", "err", err)
			c.reply("error: sysinfo unavailable")
			return
		}
		c.replyJSON(info)
	case 1:
		id := args[0]
		if err := metric.CheckServerID(id); err != nil {
			c.replyError(err, "sysinfo")
			return
		}
		if err := claims.CheckRead(id); err != nil {
			c.replyError(err, "sysinfo")
			return
		}
		snap, err := c.s.store.Snapshot(ctx, id)
		if err != nil {
			c.replyError(err, "snapshot for sysinfo")
			return
		}
		c.replyJSON(snapshotSysinfo(&snap))
	default:
		c.reply("error: usage: sysinfo [serverId]")
	}
}

// parseTarget reads cmd's "server <id>" or "instance <uuid>". A bad id is
// worded as on REST; a malformed command names cmd.
func parseTarget(cmd string, args []string) (kind, string, error) {
	if len(args) != 2 {
		return 0, "", metric.Errorf(metric.ErrInvalid, "%s: want server <id> or instance <uuid>", cmd)
	}
	switch strings.ToLower(args[0]) {
	case "server":
		if err := metric.CheckServerID(args[1]); err != nil {
			return 0, "", err
		}
		return kindServer, args[1], nil
	case "instance":
		id, err := httpapi.InstanceID(args[1])
		if err != nil {
			return 0, "", err
		}
		return kindInstance, id, nil
	}
	return 0, "", metric.Errorf(metric.ErrInvalid, "%s: unknown target %q: want server or instance", cmd, truncate(args[0], 32))
}

// subscribe checks scope and existence, answers "ok", then sends the
// latest metric at once and every new one after it.
func (c *wsClient) subscribe(ctx context.Context, claims *auth.Claims, args []string) {
	k, id, err := parseTarget("subscribe", args)
	if err != nil {
		c.replyError(err, "subscribe")
		return
	}
	serverID := id
	switch k {
	case kindServer:
		if err := claims.CheckRead(id); err != nil {
			c.replyError(err, "subscribe")
			return
		}
	case kindInstance:
		// The REST rule: an unknown instance is forbidden to a scoped token.
		info, err := httpapi.ReadInstance(ctx, c.s.store, claims, id)
		if err != nil {
			c.replyError(err, "instance lookup")
			return
		}
		serverID = info.ServerID
	}
	key := subKey{k, id}
	c.mu.Lock()
	_, dup := c.subs[key]
	n := len(c.subs)
	c.mu.Unlock()
	if dup {
		c.reply("ok")
		return
	}
	if n >= maxSubscriptions {
		c.reply(fmt.Sprintf("error: at most %d subscriptions per connection", maxSubscriptions))
		return
	}
	latest := c.s.hub.cached(k, id)
	if latest == nil || latest.movedFrom(k, serverID) {
		// A cached frame of a previous owner is not this viewer's to see.
		f, err := c.s.hub.latest(ctx, k, id)
		if err != nil {
			c.replyError(err, "latest for subscribe")
			return
		}
		if f.movedFrom(k, serverID) { // it moved between the two reads
			c.reply(movedMessage(id))
			return
		}
		latest = f
	}
	// "ok" goes first; then the latest and the live frames, in order (the
	// subscription's lastAt drops a re-sent latest that is not newer).
	c.reply("ok")
	sub := &wsSub{c: c, key: key, serverID: serverID}
	t := c.s.hub.join(k, id, sub)
	c.mu.Lock()
	sub.t = t
	if c.closed || sub.gone { // gone: it moved before we got here (see push)
		c.mu.Unlock()
		c.s.hub.leave(t, sub)
		return
	}
	if c.subs == nil {
		c.subs = map[subKey]*wsSub{}
	}
	c.subs[key] = sub
	c.mu.Unlock()
	sub.deliver(latest)
}

func (c *wsClient) unsubscribe(args []string) {
	var drop []*wsSub
	c.mu.Lock()
	if len(args) == 0 { // every series; alerts stay ("unsubscribe alerts")
		for k, sub := range c.subs {
			sub.gone = true
			drop = append(drop, sub)
			delete(c.subs, k)
		}
	}
	c.mu.Unlock()
	if len(args) > 0 {
		k, id, err := parseTarget("unsubscribe", args)
		if err != nil {
			c.replyError(err, "unsubscribe")
			return
		}
		c.mu.Lock()
		sub, ok := c.subs[subKey{k, id}]
		delete(c.subs, subKey{k, id})
		if ok {
			sub.gone = true
		}
		c.mu.Unlock()
		if !ok {
			c.reply(fmt.Sprintf("error: not subscribed to %s %s", k, id))
			return
		}
		drop = append(drop, sub)
	}
	for _, sub := range drop {
		c.s.hub.leave(sub.t, sub)
	}
	c.reply("ok")
}

// servers lists what the token may read, shaped like GET /api/servers.
func (c *wsClient) servers(ctx context.Context, claims *auth.Claims) {
	all, err := c.s.store.Servers(ctx)
	if err != nil {
		c.replyError(err, "list servers")
		return
	}
	out := make([]metric.ServerInfo, 0, len(all))
	for _, sv := range all {
		if claims.CanRead(sv.ID) {
			if sv.Instances == nil {
				sv.Instances = []metric.InstanceInfo{}
			}
			out = append(out, sv)
		}
	}
	c.replyJSON(map[string]any{"servers": out})
}

func (c *wsClient) reply(msg string) { c.push(nil, &frame{ws: []byte(msg)}) }

// replyError answers err with the text REST and SSE give it (see
// Server.clientMessage); what names the step in the log.
func (c *wsClient) replyError(err error, what string) {
	c.reply("error: " + c.s.clientMessage(err, what))
}

func (c *wsClient) replyJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.s.log.Error("encode websocket reply", "err", err)
		c.reply("error: internal error")
		return
	}
	c.push(nil, &frame{ws: b})
}

// push hands f to the writer without ever blocking. A reply (sub nil) is
// queued in order. A push replaces the subscription's pending frame, when
// it supersedes the last one accepted: a client that reads slower than
// samples arrive gets the newest state, not a backlog, and is never dropped
// for it.
func (c *wsClient) push(sub *wsSub, f *frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if sub == nil {
		c.replies = append(c.replies, f.ws)
	} else {
		if sub.gone || !supersedes(sub.lastAt, f.at, c.s.now) {
			return
		}
		if f.movedFrom(sub.key.kind, sub.serverID) {
			// The instance changed owner: its access was checked against
			// the old one. Drop the subscription; a fresh subscribe checks
			// again. The hub holds its lock while delivering, so leaving
			// it is another goroutine's job (subscribe's own, when join
			// has not returned yet).
			sub.gone = true
			sub.pending = nil
			if c.subs[sub.key] == sub {
				delete(c.subs, sub.key)
			}
			c.replies = append(c.replies, []byte(movedMessage(sub.key.id)))
			if t := sub.t; t != nil {
				go c.s.hub.leave(t, sub)
			}
			c.wakeLocked()
			return
		}
		sub.lastAt = f.at
		if sub.pending == nil {
			c.dirty = append(c.dirty, sub)
		}
		sub.pending = f
	}
	c.wakeLocked()
}

// wakeLocked starts the writer if it is not running. c.mu must be held.
func (c *wsClient) wakeLocked() {
	if !c.writing && !c.closed {
		c.writing = true
		go c.writeLoop()
	}
}

// movedMessage tells a WebSocket client that instance id changed owner.
func movedMessage(id string) string {
	return "error: instance " + id + " changed owner; subscribe again"
}

// writeLoop sends the queued replies, then each subscription's pending
// push, until nothing is left, then exits. Each write has WriteTimeout: a
// write that takes longer means the client does not read (its socket
// buffers are full), and it is dropped, counted and logged once.
func (c *wsClient) writeLoop() {
	var batch [][]byte
	for {
		c.mu.Lock()
		if c.closed || (len(c.replies) == 0 && len(c.dirty) == 0 && (c.alerts == nil || !c.alerts.ready())) {
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch = append(batch[:0], c.replies...)
		c.replies = nil
		for _, sub := range c.dirty {
			if sub.pending != nil && !sub.gone {
				batch = append(batch, sub.pending.ws)
			}
			sub.pending = nil
		}
		clear(c.dirty)
		c.dirty = c.dirty[:0]
		if c.alerts != nil {
			c.alerts.drain(c.claims.CanRead, func(f *alertFrame) { batch = append(batch, f.ws) })
		}
		c.drained.Broadcast()
		c.mu.Unlock()
		for i, msg := range batch {
			// A socket deadline, not a context per write: a context makes
			// coder/websocket arm and disarm a timer callback for every
			// frame, which dominates the cost of fanning one sample out to
			// thousands.
			_ = c.netConn.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
			err := c.conn.Write(context.Background(), websocket.MessageText, msg)
			batch[i] = nil
			if err != nil {
				c.writeFailed(err)
				return
			}
			c.s.stats.messagesOut.Add(1)
			c.s.stats.bytesOut.Add(int64(len(msg)))
		}
		_ = c.netConn.SetWriteDeadline(time.Time{})
	}
}

// writeFailed ends the client after a failed write: the client took longer
// than WriteTimeout (it does not read), or went away. The reader then ends
// and cleans up. No close frame: the socket has no room for one.
func (c *wsClient) writeFailed(err error) {
	c.mu.Lock()
	wasClosed := c.closed
	c.closed, c.writing, c.replies, c.dirty = true, false, nil, nil
	c.drained.Broadcast()
	c.mu.Unlock()
	if isTimeout(err) && !wasClosed {
		c.s.stats.slowDropped.Add(1)
		c.s.log.Info("closing slow websocket client: not reading", "writeTimeout", c.s.cfg.WriteTimeout)
	}
	_ = c.conn.CloseNow()
}

// schedulePing arms the keepalive: a timer, not a goroutine, per socket.
// Jitter spreads the pings of sockets opened together. c.mu must be held.
func (c *wsClient) schedulePing() {
	d := c.s.cfg.PingInterval
	d += time.Duration(rand.Int64N(int64(d)/5 + 1)) //nolint:gosec // jitter, not a secret
	if c.pingTimer == nil {
		c.pingTimer = time.AfterFunc(d, c.keepalive)
		return
	}
	c.pingTimer.Reset(d)
}

func (c *wsClient) keepalive() {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.PingTimeout)
	err := c.conn.Ping(ctx)
	cancel()
	c.mu.Lock()
	closed := c.closed
	if err == nil && !closed {
		c.schedulePing()
	}
	c.mu.Unlock()
	if err != nil && !closed {
		c.closeWith(statusPolicyViolation, "ping timeout")
	}
}

// closeWith sends a close frame with a reason and closes the socket. The
// close handshake is bounded by coder/websocket (5 s to write, 5 s to hear
// back), so a dead peer cannot hold it.
func (c *wsClient) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	c.closed = true
	c.replies, c.dirty = nil, nil
	c.drained.Broadcast()
	c.mu.Unlock()
	_ = c.conn.Close(code, reason)
}

// cleanup runs when the reader ends: timers stop, subscriptions are left.
func (c *wsClient) cleanup() {
	c.mu.Lock()
	c.closed = true
	c.replies, c.dirty = nil, nil
	c.drained.Broadcast()
	for _, t := range []*time.Timer{c.authTimer, c.expTimer, c.pingTimer} {
		if t != nil {
			t.Stop()
		}
	}
	subs := c.subs
	c.subs = nil
	alertSub := c.alertSub
	c.alerts, c.alertSub = nil, nil
	c.mu.Unlock()
	for _, sub := range subs {
		c.s.hub.leave(sub.t, sub)
	}
	if alertSub != nil {
		c.s.hub.leaveAlerts(alertSub)
	}
	_ = c.conn.CloseNow()
}

func isNotFound(err error) bool { return errors.Is(err, metric.ErrNotFound) }
