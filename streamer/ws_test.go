package streamer_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/streamer"
)

func TestWebSocketSeedFlow(t *testing.T) {
	e := newEnv(t, streamer.Config{})
	now := time.Now()
	e.ingest("web-1", sample(now.Add(-10*time.Second), 42))
	e.ingest("db-1", sample(now.Add(-10*time.Second), 5))

	c := e.dial()
	// Nothing but an error before auth.
	for _, cmd := range []string{"sysinfo", "sysinfo web-1", "subscribe server web-1", "servers", "stats", "ping", "bogus"} {
		if got := c.ask(cmd); !strings.HasPrefix(got, "error: not authenticated") {
			t.Errorf("%q before auth: got %q", cmd, got)
		}
	}
	expired, err := auth.IssueToken(secret, []string{"*"}, time.Second, "", "", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"servers": []string{"*"}, "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	otherKey, _ := auth.IssueToken([]byte("some-other-secret-0123456789"), []string{"*"}, time.Hour, "", "", now)
	for _, tc := range []struct{ msg, want string }{
		{"auth", "error: usage: auth <JWT>"},
		{"auth a b", "error: usage: auth <JWT>"},
		{"auth not-a-jwt", "error: invalid token: malformed"},
		{"auth " + expired, "error: invalid token: expired"},
		{"auth " + hs512, "error: invalid token: algorithm HS512 not allowed"},
		{"auth " + otherKey, "error: invalid token: bad signature"},
	} {
		if got := c.ask(tc.msg); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%.20q: got %q, want prefix %q", tc.msg, got, tc.want)
		}
	}
	c.auth(token(t, "web-1"))

	if got := c.ask("ping"); got != "pong" {
		t.Errorf("ping: %q", got)
	}
	// sysinfo of the streamer's own host: exactly the seed's fields.
	var raw map[string]json.RawMessage
	decodeJSON(t, c.ask("sysinfo"), &raw)
	if keys := sortedKeys(raw); !slices.Equal(keys, []string{"cpus", "disks", "mem"}) {
		t.Fatalf("sysinfo keys %v", keys)
	}
	var cpus []map[string]any
	decodeJSON(t, string(raw["cpus"]), &cpus)
	if len(cpus) == 0 {
		t.Fatal("sysinfo: no cpus")
	}
	for i, cpu := range cpus {
		if keys := sortedKeys(cpu); !slices.Equal(keys, []string{"model", "name", "usage"}) {
			t.Fatalf("cpu keys %v", keys)
		}
		if cpu["name"] != strings.TrimSpace(itoa(i+1)) {
			t.Errorf("cpu %d name %v", i, cpu["name"])
		}
	}
	var mem map[string]any
	decodeJSON(t, string(raw["mem"]), &mem)
	if keys := sortedKeys(mem); !slices.Equal(keys, []string{"free", "swap_free", "swap_total", "swap_used", "total", "used"}) {
		t.Fatalf("mem keys %v", keys)
	}
	if mem["total"].(float64) <= 0 {
		t.Errorf("mem total %v", mem["total"])
	}
	var disks []map[string]any
	decodeJSON(t, string(raw["disks"]), &disks)
	for _, d := range disks {
		if keys := sortedKeys(d); !slices.Equal(keys, []string{"free", "name", "total"}) {
			t.Fatalf("disk keys %v", keys)
		}
	}

	// sysinfo <serverId>: the same shape from the latest snapshot.
	var si streamer.Sysinfo
	decodeJSON(t, c.ask("sysinfo web-1"), &si)
	want := streamer.Sysinfo{
		CPUs:  []streamer.SysinfoCPU{{Name: "1", Model: "Test CPU", Usage: 42}, {Name: "2", Model: "Test CPU", Usage: 1}},
		Mem:   streamer.SysinfoMem{Total: 8 << 30, Used: 3 << 30, Free: 1 << 30, SwapTotal: 2 << 30, SwapUsed: 1 << 29, SwapFree: 3 << 29},
		Disks: []streamer.SysinfoDisk{{Name: "/dev/test1", Total: 100 << 30, Free: 60 << 30}},
	}
	if b1, b2 := mustJSON(t, si), mustJSON(t, want); b1 != b2 {
		t.Errorf("sysinfo web-1:\n got %s\nwant %s", b1, b2)
	}
	for _, tc := range []struct{ msg, want string }{
		{"sysinfo db-1", `error: token may not read server "db-1"`},
		{"sysinfo bad/id", "error: server id"},
		{"sysinfo a b", "error: usage: sysinfo [serverId]"},
		{"subscribe server db-1", `error: token may not read server "db-1"`},
		{"subscribe instance " + metric.InstanceUUID("db-1", "app"), "error: token may not read instance " + metric.InstanceUUID("db-1", "app")},
		// As on REST: unknown is forbidden to a scoped token, not "not found".
		{"subscribe instance " + metric.InstanceUUID("web-1", "nosuch"), "error: token may not read instance " + metric.InstanceUUID("web-1", "nosuch")},
		{"subscribe instance not-a-uuid", `error: instance id "not-a-uuid": must be a UUID`},
		{"subscribe planet web-1", "error: subscribe: unknown target"},
		{"subscribe server", "error: subscribe: want server <id> or instance <uuid>"},
		{"unsubscribe server web-1", "error: not subscribed to server web-1"},
		{"unsubscribe instance nope", `error: instance id "nope": must be a UUID`},
		{"bogus", `error: unknown command "bogus"`},
		{"   ", "error: empty command"},
	} {
		if got := c.ask(tc.msg); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q: got %q, want prefix %q", tc.msg, got, tc.want)
		}
	}
	// Commands are case-insensitive.
	if got := c.ask("PING"); got != "pong" {
		t.Errorf("PING: %q", got)
	}

	// servers: only what the token may read.
	var list struct {
		Servers []metric.ServerInfo `json:"servers"`
	}
	decodeJSON(t, c.ask("servers"), &list)
	if len(list.Servers) != 1 || list.Servers[0].ID != "web-1" || len(list.Servers[0].Instances) != 1 {
		t.Errorf("servers: %+v", list.Servers)
	}

	// Binary and invalid UTF-8 are answered with an error, the socket stays.
	ctx := context.Background()
	if err := c.conn.Write(ctx, websocket.MessageBinary, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := c.read(); !strings.HasPrefix(got, "error: binary messages are not supported") {
		t.Errorf("binary: %q", got)
	}
	if got := c.ask("ping \xff"); got != "error: message is not valid UTF-8" {
		t.Errorf("bad utf-8: %q", got)
	}

	// stats: traffic figures.
	var st streamer.Stats
	decodeJSON(t, c.ask("stats"), &st)
	if st.Connections < 1 || st.MessagesIn < 20 || st.MessagesOut < 20 || st.BytesIn == 0 || st.BytesOut == 0 || st.Requests < 1 {
		t.Errorf("stats: %+v", st)
	}
}

func TestWebSocketSubscribe(t *testing.T) {
	e := newEnv(t, streamer.Config{})
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	e.ingest("web-1", sample(t0, 10))
	inst := metric.InstanceUUID("web-1", "app")

	c := e.dial()
	c.auth(token(t, "*"))
	if got := c.ask("subscribe server nosuch"); !strings.HasPrefix(got, "error: ") || !strings.Contains(got, "not found") {
		t.Errorf("unknown server: %q", got)
	}
	unknown := metric.InstanceUUID("web-1", "nosuch")
	if got, want := c.ask("subscribe instance "+unknown), "error: instance "+unknown+" not found"; got != want {
		t.Errorf("unknown instance: %q, want %q", got, want)
	}
	if got := c.ask("subscribe server web-1"); got != "ok" {
		t.Fatalf("subscribe: %q", got)
	}
	p := c.readPush() // the latest, at once
	if p.Type != "server" || p.ID != "web-1" || !p.collectedAt(t).Equal(t0) {
		t.Fatalf("first push %+v", p)
	}
	var m metric.ServerMetric
	decodeJSON(t, string(p.Metric), &m)
	if m.ServerID != "web-1" || m.CPUUsagePercent != 10 {
		t.Errorf("metric %+v", m)
	}
	if got := c.ask("subscribe instance " + strings.ToUpper(inst)); got != "ok" {
		t.Fatalf("subscribe instance: %q", got)
	}
	p = c.readPush()
	if p.Type != "instance" || p.ID != inst {
		t.Fatalf("instance push %+v", p)
	}
	// Subscribing twice is harmless and sends nothing twice.
	if got := c.ask("subscribe server web-1"); got != "ok" {
		t.Fatalf("resubscribe: %q", got)
	}

	t1 := t0.Add(10 * time.Second)
	e.ingest("web-1", sample(t1, 20))
	got := map[string]time.Time{}
	for len(got) < 2 {
		p := c.readPush()
		got[p.Type] = p.collectedAt(t)
	}
	if !got["server"].Equal(t1) || !got["instance"].Equal(t1) {
		t.Fatalf("live pushes %v", got)
	}

	if got := c.ask("unsubscribe server web-1"); got != "ok" {
		t.Fatalf("unsubscribe: %q", got)
	}
	t2 := t1.Add(10 * time.Second)
	e.ingest("web-1", sample(t2, 30))
	p = c.readPush()
	if p.Type != "instance" || !p.collectedAt(t).Equal(t2) {
		t.Fatalf("after unsubscribe: %+v", p)
	}
	if got := c.ask("unsubscribe"); got != "ok" {
		t.Fatalf("unsubscribe all: %q", got)
	}
	if got := c.ask("ping"); got != "pong" {
		t.Fatalf("ping: %q", got)
	}
}

// The handshake refusals come from coder/websocket as plain text, the one
// exception to JSON errors that the README documents.
func TestWebSocketHandshakeRefusalsArePlainText(t *testing.T) {
	e := newEnv(t, streamer.Config{})
	upgrade := http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-WebSocket-Version": {"13"},
		"Sec-WebSocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		status int
	}{
		{"not an upgrade", nil, http.StatusUpgradeRequired},
		{"foreign origin", withHeader(upgrade, "Origin", "https://elsewhere.example"), http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, e.http.URL+"/api/health/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			maps.Copy(req.Header, tc.header)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != tc.status || !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("%d %s, want %d text/plain", resp.StatusCode, ct, tc.status)
			}
		})
	}
}

func withHeader(h http.Header, k, v string) http.Header {
	h = h.Clone()
	h.Set(k, v)
	return h
}

// Re-sending auth with a narrower token keeps what it may read and drops
// the rest: no more pushes, and unsubscribe no longer knows them.
func TestWebSocketReauthNarrowerDropsSubscriptions(t *testing.T) {
	// Channels stay subscribed in Redis long after their last client: what
	// stops the pushes must be the socket's own subscriptions.
	e := newEnv(t, streamer.Config{UnsubscribeDelay: time.Hour})
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	e.ingest("web-1", sample(t0, 10))
	e.ingest("db-1", sample(t0, 20))
	dbApp := metric.InstanceUUID("db-1", "app")

	c := e.dial()
	c.auth(token(t, "*"))
	for _, target := range []string{"server web-1", "server db-1", "instance " + dbApp} {
		if got := c.ask("subscribe " + target); got != "ok" {
			t.Fatalf("subscribe %s: %q", target, got)
		}
		c.readPush()
	}
	for _, ch := range []string{e.store.ServerChannel("web-1"), e.store.ServerChannel("db-1"), e.store.InstanceChannel(dbApp)} {
		eventually(t, "redis subscription "+ch, func() bool {
			n, err := e.store.Client().PubSubNumSub(context.Background(), ch).Result()
			return err == nil && n[ch] == 1
		})
	}

	c.auth(token(t, "web-1"))
	// db-1 publishes first: the hub hands messages on in the order Redis
	// sends them, so a db-1 push still owed to this socket would come
	// before web-1's.
	t1 := t0.Add(10 * time.Second)
	e.ingest("db-1", sample(t1, 21))
	e.ingest("web-1", sample(t1, 11))
	if p := c.readPush(); p.Type != "server" || p.ID != "web-1" || !p.collectedAt(t).Equal(t1) {
		t.Fatalf("first push after re-auth: %s %s at %s, want server web-1 at %s", p.Type, p.ID, p.collectedAt(t), t1)
	}
	for _, tc := range []struct{ msg, want string }{
		{"unsubscribe server db-1", "error: not subscribed to server db-1"},
		{"unsubscribe instance " + dbApp, "error: not subscribed to instance " + dbApp},
		{"subscribe server db-1", `error: token may not read server "db-1"`},
		{"unsubscribe server web-1", "ok"},
	} {
		if got := c.ask(tc.msg); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.msg, got, tc.want)
		}
	}
}

// One Redis subscription per channel, however many clients follow it, and
// none once they have all left.
func TestHubSharesOneSubscription(t *testing.T) {
	e := newEnv(t, streamer.Config{UnsubscribeDelay: 50 * time.Millisecond})
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	e.ingest("web-1", sample(t0, 10))
	ch := e.store.ServerChannel("web-1")
	numsub := func() int64 {
		n, err := e.store.Client().PubSubNumSub(context.Background(), ch).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[ch]
	}
	var clients []*client
	for range 5 {
		c := e.dial()
		c.auth(token(t, "*"))
		if got := c.ask("subscribe server web-1"); got != "ok" {
			t.Fatal(got)
		}
		c.readPush()
		clients = append(clients, c)
	}
	eventually(t, "one subscription", func() bool { return numsub() == 1 })
	t1 := t0.Add(10 * time.Second)
	e.ingest("web-1", sample(t1, 11))
	for _, c := range clients {
		c.waitPush(t1)
	}
	if n := numsub(); n != 1 {
		t.Fatalf("NUMSUB %d after fan-out", n)
	}
	for _, c := range clients {
		_ = c.conn.Close(websocket.StatusNormalClosure, "")
	}
	eventually(t, "unsubscribe after the last client", func() bool { return numsub() == 0 })
}

func TestWebSocketAuthDeadline(t *testing.T) {
	e := newEnv(t, streamer.Config{AuthTimeout: 200 * time.Millisecond})
	c := e.dial()
	_, err := c.tryRead(30 * time.Second)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "authentication timeout" {
		t.Fatalf("want close 1008 authentication timeout, got %v", err)
	}
}

func TestWebSocketTokenExpiry(t *testing.T) {
	e := newEnv(t, streamer.Config{})
	c := e.dial()
	var err error
	for attempt := 1; err == nil; attempt++ {
		if attempt > 10 {
			t.Fatal("every token expired before it was verified")
		}
		// The token lasts one to two seconds (exp is whole seconds); on a
		// machine too loaded to verify it in time it is refused as
		// expired: mint another.
		tok, ierr := auth.IssueToken(secret, []string{"*"}, 2*time.Second, "", "", time.Now())
		if ierr != nil {
			t.Fatal(ierr)
		}
		c.send("auth " + tok)
		// "ok", then the close; or the close alone, when the token ran out
		// between the check and the answer.
		var got string
		got, err = c.tryRead(30 * time.Second)
		if err == nil && got == "ok" {
			got, err = c.tryRead(30 * time.Second)
		}
		if err == nil && got != "error: invalid token: expired" {
			t.Fatalf("auth: got %q", got)
		}
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation || ce.Reason != "token expired" {
		t.Fatalf("want close 1008 token expired, got %v", err)
	}
}

func TestWebSocketOversizedFrame(t *testing.T) {
	e := newEnv(t, streamer.Config{ReadLimit: 1024})
	c := e.dial()
	c.auth(token(t, "*"))
	// The server may close before the whole frame is written; the write
	// error is expected then.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = c.conn.Write(ctx, websocket.MessageText, []byte("auth "+strings.Repeat("x", 4096)))
	cancel()
	_, err := c.tryRead(30 * time.Second)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusMessageTooBig {
		t.Fatalf("want close 1009, got %v", err)
	}
}

// A client that stops reading is dropped: its socket buffers fill, a write
// blocks past WriteTimeout, and it is closed and counted once, on either
// transport. The reading client gets every message, before and after, and
// is not dropped.
//
// Each message is published only once the reading client has received the
// previous one, so it shows that the stuck writes of the others never
// stall it. Only the clients that never read fill up: a matter of bytes
// (64 KiB messages overflow any socket buffer), then of WriteTimeout.
func TestSlowClientIsDroppedOthersKeepReceiving(t *testing.T) {
	// A long ping interval: the write deadline, nothing else, drops them.
	e := newEnv(t, streamer.Config{WriteTimeout: 500 * time.Millisecond, PingInterval: time.Hour})
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.ingest("web-1", sample(t0, 1))

	slow, fast := e.dial(), e.dial()
	for _, c := range []*client{slow, fast} {
		c.auth(token(t, "*"))
		if got := c.ask("subscribe server web-1"); got != "ok" {
			t.Fatal(got)
		}
		c.readPush()
	}
	_, slowSSE := e.sse("/api/servers/web-1/metrics/stream", token(t, "*"))
	slowSSE.nextData(t)
	// The hub subscribes in the background; a message published before
	// Redis has the subscription would be lost to pub/sub.
	ch := e.store.ServerChannel("web-1")
	eventually(t, "redis subscription", func() bool {
		n, err := e.store.Client().PubSubNumSub(context.Background(), ch).Result()
		return err == nil && n[ch] == 1
	})

	pad := strings.Repeat("x", 64<<10)
	sent := 0
	// publish sends the next message straight to the channel and checks
	// that the fast client gets exactly that one.
	publish := func() {
		t.Helper()
		sent++
		id := "web-1-" + itoa(sent)
		at := t0.Add(time.Duration(sent) * time.Second).UTC()
		msg, _ := json.Marshal(map[string]any{"id": id, "serverId": "web-1", "collectedAt": at, "pad": pad})
		if err := e.store.Client().Publish(context.Background(), ch, msg).Err(); err != nil {
			t.Fatal(err)
		}
		var m struct {
			ID string `json:"id"`
		}
		decodeJSON(t, string(fast.readPush().Metric), &m)
		if m.ID != id {
			t.Fatalf("fast client got %q, want %q", m.ID, id)
		}
	}
	// Bounded by a generous deadline, only to catch a hang.
	deadline := time.Now().Add(60 * time.Second)
	for e.srv.Stats().SlowClientsDrops < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("slow clients not dropped after %d messages of 64 KiB: %d dropped", sent, e.srv.Stats().SlowClientsDrops)
		}
		publish()
	}
	t.Logf("slow clients dropped after %d messages", sent)
	// The slow clients read again: what was written before the drop, then
	// the end of the connection (no close frame: there was no room for one).
	for {
		if _, err := slow.tryRead(30 * time.Second); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("slow websocket client still open")
			}
			break
		}
	}
	for {
		if _, err := slowSSE.next(); err != nil {
			break
		}
	}
	// The fast client keeps receiving every message, and was not dropped.
	for range 20 {
		publish()
	}
	if got := fast.ask("ping"); got != "pong" {
		t.Fatalf("fast client after drop: %q", got)
	}
	if n := e.srv.Stats().SlowClientsDrops; n != 2 {
		t.Fatalf("%d clients dropped, want only the 2 slow ones", n)
	}
}

func TestShutdownClosesWithReason(t *testing.T) {
	e := newEnv(t, streamer.Config{})
	e.ingest("web-1", sample(time.Now().Add(-time.Minute), 1))
	c := e.dial()
	c.auth(token(t, "*"))
	_, stream := e.sse("/api/servers/web-1/metrics/stream", token(t, "*"))
	stream.nextData(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(ctx) }()
	_, err := c.tryRead(10 * time.Second)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "server shutting down" {
		t.Fatalf("want close 1001 server shutting down, got %v", err)
	}
	// The SSE stream ends cleanly: a last comment, then EOF (not a reset).
	var comments []string
	for {
		ev, err := stream.next()
		comments = append(comments, ev.comments...)
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("sse ended with %v", err)
			}
			break
		}
	}
	if !slices.Contains(comments, "server shutting down") {
		t.Errorf("sse comments %v", comments)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
