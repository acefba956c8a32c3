package streamer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
	"github.com/vitals-dev/vitals/streamer"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

var secret = []byte("streamer-test-secret-0123456789abcdef")

// env is a streamer on a real Redis (with the real store) behind httptest.
type env struct {
	t      testing.TB
	store  *redisstore.Store
	alerts *alertstore.Store
	srv    *streamer.Server
	http   *httptest.Server
	ws     string // ws://…/api/health/ws
	prefix string
}

func newEnv(t testing.TB, cfg streamer.Config) *env {
	t.Helper()
	r := redistest.New(t)
	return newEnvOn(t, r.URL, r.Prefix, cfg)
}

func newEnvOn(t testing.TB, url, prefix string, cfg streamer.Config) *env {
	t.Helper()
	ctx := context.Background()
	store, err := redisstore.Open(ctx, redisstore.Config{URL: url, Prefix: prefix}, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	alerts := alertstore.New(store.Client(), store.Prefix(), store.Wrap)
	srv, err := streamer.New(streamer.Deps{Store: store, Client: store.Client(), Channels: store, Verifier: v, Alerts: alerts}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &env{t: t, store: store, alerts: alerts, srv: srv, http: hs, ws: "ws" + strings.TrimPrefix(hs.URL, "http") + "/api/health/ws", prefix: prefix}
}

func token(t testing.TB, servers ...string) string {
	t.Helper()
	tok, err := auth.IssueToken(secret, servers, time.Hour, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// sample is a plausible reading at at, with a detail list and one instance.
func sample(at time.Time, cpu float64) metric.Sample {
	u := func(v uint64) *uint64 { return &v }
	f := func(v float64) *float64 { return &v }
	return metric.Sample{
		CollectedAt:     at.UTC().Truncate(time.Second),
		CPUUsagePercent: cpu, CPULoad1m: 0.5, CPULoad5m: 0.4, CPULoad15m: 0.3,
		RAMTotalBytes: 8 << 30, RAMUsedBytes: 3 << 30, RAMAvailableBytes: 5 << 30, RAMUsagePercent: 37.5,
		RAMFreeBytes:   u(1 << 30),
		SwapTotalBytes: u(2 << 30), SwapUsedBytes: u(1 << 29), SwapFreeBytes: u(3 << 29),
		DiskTotalBytes: 100 << 30, DiskUsedBytes: 40 << 30, DiskAvailableBytes: 60 << 30, DiskUsagePercent: 40,
		NetworkRxBytes: 1000, NetworkTxBytes: 2000, NetworkRxBytesPerSec: f(12.5), NetworkTxBytesPerSec: f(7),
		UptimeSeconds: 3600,
		CPUs:          []metric.CPU{{Name: "cpu0", Model: "Test CPU", Usage: cpu}, {Name: "cpu1", Model: "Test CPU", Usage: 1}},
		Disks:         []metric.Disk{{Name: "/dev/test1", Mountpoint: "/", Total: 100 << 30, Used: 40 << 30, Free: 60 << 30}},
		Instances: []metric.InstanceSample{{
			InstanceID: metric.InstanceUUID("web-1", "app"), Name: "app",
			CPUUsagePercent: cpu / 2, MemoryUsedBytes: 100 << 20, MemoryLimitBytes: 1 << 30, MemoryUsagePercent: 9.8,
		}},
	}
}

func (e *env) ingest(serverID string, s metric.Sample) {
	e.t.Helper()
	for i, in := range s.Instances {
		s.Instances[i].InstanceID = metric.InstanceUUID(serverID, in.Name)
	}
	res, err := e.store.Ingest(context.Background(), serverID, []metric.Sample{s})
	if err != nil {
		e.t.Fatalf("ingest: %v", err)
	}
	if res.Accepted != 1 {
		e.t.Fatalf("ingest: %+v", res)
	}
}

// client is a WebSocket test client.
type client struct {
	t    testing.TB
	conn *websocket.Conn
}

func (e *env) dial() *client {
	e.t.Helper()
	return e.dialFor(e.t)
}

// dialFor is dial for a test other than the one that made e (a fuzz input).
func (e *env) dialFor(t testing.TB) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, e.ws, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = conn.CloseNow() })
	return &client{t: t, conn: conn}
}

func (c *client) send(msg string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		c.t.Fatalf("send %q: %v", msg, err)
	}
}

func (c *client) read() string {
	c.t.Helper()
	s, err := c.tryRead(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return s
}

func (c *client) tryRead(d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	return string(b), err
}

// ask sends a command and returns the reply.
func (c *client) ask(msg string) string {
	c.t.Helper()
	c.send(msg)
	return c.read()
}

func (c *client) auth(tok string) {
	c.t.Helper()
	if got := c.ask("auth " + tok); got != "ok" {
		c.t.Fatalf("auth: got %q", got)
	}
}

// push is a live update as the WebSocket sends it.
type push struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Metric json.RawMessage `json:"metric"`
}

func (p push) collectedAt(t testing.TB) time.Time {
	var m struct {
		CollectedAt time.Time `json:"collectedAt"`
	}
	if err := json.Unmarshal(p.Metric, &m); err != nil {
		t.Fatalf("push metric: %v", err)
	}
	return m.CollectedAt
}

func (c *client) readPush() push {
	c.t.Helper()
	raw := c.read()
	var p push
	if err := json.Unmarshal([]byte(raw), &p); err != nil || p.Type == "" {
		c.t.Fatalf("want a push, got %q (%v)", raw, err)
	}
	return p
}

// waitPush reads pushes until one carries a metric collected at want.
func (c *client) waitPush(want time.Time) push {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p := c.readPush()
		if p.collectedAt(c.t).Equal(want) {
			return p
		}
	}
	c.t.Fatalf("no push for %s", want)
	return push{}
}

// sseStream reads Server-Sent Events.
type sseStream struct {
	resp *http.Response
	rd   *bufio.Reader
}

type sseEvent struct {
	id, event, data string
	retry           string
	comments        []string
}

func (e *env) sse(path, bearer string) (*http.Response, *sseStream) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.http.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	e.t.Cleanup(func() { _ = resp.Body.Close() })
	return resp, &sseStream{resp: resp, rd: bufio.NewReader(resp.Body)}
}

// next reads one event (comment-only blocks are returned too, with
// comments set).
func (s *sseStream) next() (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := s.rd.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			return ev, nil
		case strings.HasPrefix(line, ":"):
			ev.comments = append(ev.comments, strings.TrimSpace(line[1:]))
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.event = v
			case "data":
				ev.data += v
			case "retry":
				ev.retry = v
			}
		}
	}
}

// nextData skips comment-only blocks.
func (s *sseStream) nextData(t testing.TB) sseEvent {
	t.Helper()
	type res struct {
		ev  sseEvent
		err error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			ev, err := s.next()
			if err != nil || ev.data != "" {
				ch <- res{ev, err}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("sse read: %v", r.err)
		}
		return r.ev
	case <-time.After(30 * time.Second):
		t.Fatal("no SSE event")
	}
	return sseEvent{}
}

func decodeJSON(t testing.TB, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// authIssue mints a one-hour "*" token as if issued at at.
func authIssue(at time.Time) (string, error) {
	return auth.IssueToken(secret, []string{"*"}, time.Hour, "", "", at)
}
