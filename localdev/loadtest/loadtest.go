// Package loadtest measures the streamer's fan-out: N WebSocket subscribers
// and M SSE clients on one streamer, samples published to Redis at a fixed
// rate, and it reports the streamer's memory per connection, the messages
// delivered per second and the publish→client latency.
//
// By default the streamer runs in a child process (this same program
// re-executed with -role=streamer) so that its RSS is its own; -inprocess
// runs it in the driver's process instead (for tests; RSS then includes the
// clients). Everything listens on loopback, a private redis-server is
// started unless -redis names one, and the run stops by itself.
//
// localdev wires it as `go run ./localdev load [flags]`.
package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpserve"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/streamer"
)

// options are the command-line flags.
type options struct {
	ws, sse, servers int
	rate             float64
	warmup, duration time.Duration
	timeout          time.Duration
	redisURL         string
	inprocess        bool
	dialers          int
	role             string
	addr             string
	prefix           string
}

// Main runs the load test described by args (see -h) and writes the report
// to stdout.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var o options
	fs.IntVar(&o.ws, "ws", 10000, "WebSocket subscribers")
	fs.IntVar(&o.sse, "sse", 100, "SSE clients")
	fs.IntVar(&o.servers, "servers", 100, "servers (channels); clients are spread over them evenly")
	fs.Float64Var(&o.rate, "rate", 1, "updates per second per server (so per client)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "wait after the last client subscribed before measuring")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measurement window")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "hard limit for the whole run")
	fs.StringVar(&o.redisURL, "redis", "", "Redis URL (default: start a private redis-server from PATH)")
	fs.BoolVar(&o.inprocess, "inprocess", false, "run the streamer in this process (RSS then includes the clients)")
	fs.IntVar(&o.dialers, "dialers", 64, "concurrent connection attempts while ramping up")
	fs.StringVar(&o.role, "role", "", "internal: \"streamer\" runs the child side")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:0", "internal: the child streamer's listen address")
	fs.StringVar(&o.prefix, "prefix", "vitals-load:", "Redis key prefix")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: localdev load [flags]\n\nN WebSocket subscribers + M SSE clients on one streamer, samples published at a fixed rate;\nreports streamer RSS per connection, messages/s delivered and publish→client latency.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if o.role == "streamer" {
		return runChild(ctx, o, stdout)
	}
	if o.ws < 0 || o.sse < 0 || o.ws+o.sse == 0 || o.servers < 1 || o.rate <= 0 || o.duration <= 0 {
		return errors.New("need -ws or -sse > 0, -servers ≥ 1, -rate > 0 and -duration > 0")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return run(ctx, o, args, stdout)
}

func run(ctx context.Context, o options, args []string, stdout io.Writer) error {
	need := uint64(o.ws+o.sse) + 256 //nolint:gosec // counts from flags, never negative; +256: the driver holds the client ends
	if o.inprocess {
		need += uint64(o.ws + o.sse) //nolint:gosec // client counts from flags, never negative
	}
	if lim, err := raiseFDLimit(); err == nil && lim < need {
		fmt.Fprintf(stdout, "warning: open-file limit %d may be too low for %d connections (raise the hard limit: ulimit -Hn)\n", lim, o.ws+o.sse)
	}

	redisURL := o.redisURL
	if redisURL == "" {
		r, err := startRedis(ctx)
		if err != nil {
			return err
		}
		defer r.stop()
		redisURL = r.url
	}
	store, err := redisstore.Open(ctx, redisstore.Config{URL: redisURL, Prefix: o.prefix}, nil)
	if err != nil {
		return fmt.Errorf("open redis: %w", err)
	}
	defer store.Close() //nolint:errcheck // load tool shutting down; nothing unsaved

	// Every server needs a latest sample: subscribing checks it exists.
	servers := make([]string, o.servers)
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	for i := range servers {
		servers[i] = fmt.Sprintf("load-%04d", i)
		if _, err := store.Ingest(ctx, servers[i], []metric.Sample{seedSample(start)}); err != nil {
			return fmt.Errorf("seed %s: %w", servers[i], err)
		}
	}

	secret := auth.NewSecret()
	var base string
	var pid int
	var stopStreamer func()
	if o.inprocess {
		b, stop, err := startInProcess(ctx, store, secret, o.addr)
		if err != nil {
			return err
		}
		base, pid, stopStreamer = b, os.Getpid(), stop
	} else {
		b, p, stop, err := startChild(ctx, o, args, redisURL, secret)
		if err != nil {
			return err
		}
		base, pid, stopStreamer = b, p, stop
	}
	defer stopStreamer()
	tok, err := auth.IssueToken([]byte(secret), []string{"*"}, time.Hour, "", "", time.Now())
	if err != nil {
		return err
	}

	time.Sleep(500 * time.Millisecond) // let the child settle before the baseline
	rss0, _ := rssOf(pid)
	fmt.Fprintf(stdout, "streamer at %s (pid %d, %s), baseline RSS %s\n", base, pid, map[bool]string{true: "in-process", false: "child process"}[o.inprocess], kib(rss0))

	st := newStats()
	clientsCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var wg sync.WaitGroup
	t0 := time.Now()
	if err := connectAll(clientsCtx, o, base, tok, servers, st, &wg); err != nil {
		stopClients()
		wg.Wait()
		return err
	}
	fmt.Fprintf(stdout, "connected %d WebSocket + %d SSE clients in %s (%d failed)\n",
		st.wsUp.Load(), st.sseUp.Load(), time.Since(t0).Round(time.Millisecond), st.failed.Load())

	// Publish on a fixed schedule, spread evenly over each period.
	pubCtx, stopPub := context.WithCancel(ctx)
	var pubWG sync.WaitGroup
	pubWG.Add(1)
	var published atomic.Int64
	go func() {
		defer pubWG.Done()
		publish(pubCtx, store, servers, o.rate, &published)
	}()

	select {
	case <-time.After(o.warmup):
	case <-ctx.Done():
	}
	rss1, _ := rssOf(pid)
	cpu0, _ := cpuTicks(pid)
	self0, _ := cpuTicks(os.Getpid())
	st.measureFrom(time.Now())
	pub0 := published.Load()
	mStart := time.Now()
	select {
	case <-time.After(o.duration):
	case <-ctx.Done():
	}
	st.measureUntil(time.Now())
	window := time.Since(mStart)
	pub1 := published.Load()
	cpu1, _ := cpuTicks(pid)
	self1, _ := cpuTicks(os.Getpid())
	rss2, _ := rssOf(pid)
	stopPub()
	pubWG.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("load test cut short: %w", ctx.Err())
	}

	conns := st.wsUp.Load() + st.sseUp.Load()
	rss := max(rss1, rss2)
	perConn := 0.0
	if conns > 0 {
		perConn = float64(rss-rss0) / float64(conns)
	}
	lat := st.latencies()
	delivered := st.received.Load()
	expected := float64(pub1-pub0) * float64(o.ws+o.sse) / float64(o.servers)
	cpuPct := float64(cpu1-cpu0) / clockTicks / window.Seconds() * 100

	fmt.Fprintf(stdout, "\nload:      %d WebSocket + %d SSE clients over %d servers, %.3g update/s per server, window %s\n",
		o.ws, o.sse, o.servers, o.rate, window.Round(time.Millisecond))
	fmt.Fprintf(stdout, "published: %d samples (%.0f/s)\n", pub1-pub0, float64(pub1-pub0)/window.Seconds())
	fmt.Fprintf(stdout, "delivered: %d messages = %.0f msg/s (%.1f%% of the %.0f expected)\n",
		delivered, float64(delivered)/window.Seconds(), 100*float64(delivered)/max(expected, 1), expected)
	fmt.Fprintf(stdout, "latency:   publish→client p50 %s  p90 %s  p99 %s  max %s  (%d samples)\n",
		pctl(lat, 0.50), pctl(lat, 0.90), pctl(lat, 0.99), pctl(lat, 1), len(lat))
	fmt.Fprintf(stdout, "streamer:  RSS %s loaded (baseline %s) → %.1f KiB per connection; CPU %.0f%% of one core\n",
		kib(rss), kib(rss0), perConn/1024, cpuPct)
	if !o.inprocess {
		fmt.Fprintf(stdout, "clients:   the load driver (clients + publisher) used %.0f%% of one core on the same machine\n",
			float64(self1-self0)/clockTicks/window.Seconds()*100)
	}
	if m := askMem(); m != "" {
		fmt.Fprintf(stdout, "runtime:   %s\n", m)
	}
	fmt.Fprintf(stdout, "dropped:   %d clients closed by the streamer during the run\n", st.closed.Load())
	p99 := pctlDur(lat, 0.99)
	fmt.Fprintf(stdout, "targets:   RSS/conn ≤ 25 KiB: %s   p99 ≤ 50 ms: %s\n",
		passFail(perConn <= 25*1024 && !o.inprocess, o.inprocess), passFail(p99 <= 50*time.Millisecond && len(lat) > 0, false))

	stopClients()
	waitTimeout(&wg, 15*time.Second)
	return nil
}

func passFail(ok, na bool) string {
	switch {
	case na:
		return "n/a (in-process)"
	case ok:
		return "PASS"
	}
	return "FAIL"
}

// seedSample is a plausible sample; the load test only needs one per server.
func seedSample(at time.Time) metric.Sample {
	return metric.Sample{
		CollectedAt: at, CPUUsagePercent: 12, CPULoad1m: 0.3, CPULoad5m: 0.2, CPULoad15m: 0.1,
		RAMTotalBytes: 8 << 30, RAMUsedBytes: 2 << 30, RAMAvailableBytes: 6 << 30, RAMUsagePercent: 25,
		DiskTotalBytes: 100 << 30, DiskUsedBytes: 30 << 30, DiskAvailableBytes: 70 << 30, DiskUsagePercent: 30,
		NetworkRxBytes: 1, NetworkTxBytes: 1, UptimeSeconds: 1000,
	}
}

// publish sends one live update per server per 1/rate seconds, spread
// evenly, exactly as the store publishes them: the JSON of the raw
// ServerMetric on the server's channel. collectedAt carries the publish
// time (to the nanosecond) so clients can measure latency.
func publish(ctx context.Context, store *redisstore.Store, servers []string, rate float64, n *atomic.Int64) {
	interval := time.Duration(float64(time.Second) / rate / float64(len(servers)))
	tick := time.NewTicker(max(interval, 50*time.Microsecond))
	defer tick.Stop()
	rdb := store.Client()
	s := seedSample(time.Now())
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		id := servers[i%len(servers)]
		s.CollectedAt = time.Now()
		m := metric.RawServerMetric(id, &s, 10*time.Second)
		b, _ := json.Marshal(m)
		if err := rdb.Publish(ctx, store.ServerChannel(id), b).Err(); err == nil {
			n.Add(1)
		}
	}
}

// stats gathers what the clients saw.
type stats struct {
	wsUp, sseUp, failed, closed atomic.Int64
	received                    atomic.Int64 // in the window

	from, until atomic.Int64 // window, unix nanos (0: not measuring)
	shards      []latShard
}

type latShard struct {
	mu  sync.Mutex
	lat []time.Duration
	_   [40]byte // keep shards on separate cache lines
}

func newStats() *stats {
	return &stats{shards: make([]latShard, 64)}
}

func (s *stats) measureFrom(t time.Time)  { s.from.Store(t.UnixNano()) }
func (s *stats) measureUntil(t time.Time) { s.until.Store(t.UnixNano()) }

// record notes a message that was published at pub and received now.
func (s *stats) record(client int, pub time.Time, now time.Time) {
	from, until := s.from.Load(), s.until.Load()
	if from == 0 || pub.UnixNano() < from || (until != 0 && now.UnixNano() > until) {
		return
	}
	s.received.Add(1)
	sh := &s.shards[client%len(s.shards)]
	sh.mu.Lock()
	sh.lat = append(sh.lat, now.Sub(pub))
	sh.mu.Unlock()
}

func (s *stats) latencies() []time.Duration {
	var all []time.Duration
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		all = append(all, sh.lat...)
		sh.mu.Unlock()
	}
	slices.Sort(all)
	return all
}

func pctlDur(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

func pctl(sorted []time.Duration, q float64) string {
	if len(sorted) == 0 {
		return "–"
	}
	d := pctlDur(sorted, q)
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

// connectAll opens the clients with bounded concurrency; each reads until
// ctx ends.
func connectAll(ctx context.Context, o options, base, tok string, servers []string, st *stats, wg *sync.WaitGroup) error {
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/api/health/ws"
	sem := make(chan struct{}, o.dialers)
	// One transport for the SSE clients, sized for all of them.
	sseClient := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: o.sse + 1, DisableCompression: true}}
	var ready sync.WaitGroup
	var firstErr atomic.Value
	total := o.ws + o.sse
	for i := 0; i < total; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if v := firstErr.Load(); v != nil && st.failed.Load() > int64(total/100+10) {
			return fmt.Errorf("too many connection failures (%d), first: %v", st.failed.Load(), v)
		}
		server := servers[i%len(servers)]
		ready.Add(1)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var err error
			if i < o.ws {
				err = wsClient(ctx, i, wsURL, tok, server, st, sem, &ready)
			} else {
				err = sseClientRun(ctx, i, sseClient, base, tok, server, st, sem, &ready)
			}
			if err != nil && ctx.Err() == nil {
				st.failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { ready.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if v := firstErr.Load(); v != nil {
		if n := st.failed.Load(); n > int64(total/100) {
			return fmt.Errorf("%d of %d clients failed to connect, first: %v", n, total, v)
		}
	}
	return nil
}

// wsClient connects, authenticates, subscribes, signals ready, then reads.
func wsClient(ctx context.Context, id int, url, tok, server string, st *stats, sem chan struct{}, ready *sync.WaitGroup) error {
	released := false
	release := func() {
		if !released {
			released = true
			<-sem
			ready.Done()
		}
	}
	defer release()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled}) //nolint:bodyclose // websocket.Dial's response body is already closed (or nil) when it returns
	cancel()
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.CloseNow() //nolint:errcheck // tearing the client down; the error says nothing
	ask := func(cmd string) error {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := conn.Write(wctx, websocket.MessageText, []byte(cmd)); err != nil {
			return err
		}
		_, b, err := conn.Read(wctx)
		if err != nil {
			return err
		}
		if string(b) != "ok" {
			return fmt.Errorf("%s: %s", strings.Fields(cmd)[0], b)
		}
		return nil
	}
	if err := ask("auth " + tok); err != nil {
		return err
	}
	if err := ask("subscribe server " + server); err != nil {
		return err
	}
	st.wsUp.Add(1)
	release()
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() == nil {
				st.closed.Add(1)
			}
			return nil
		}
		now := time.Now()
		if at, ok := collectedAt(b); ok {
			st.record(id, at, now)
		}
	}
}

func sseClientRun(ctx context.Context, id int, c *http.Client, base, tok, server string, st *stats, sem chan struct{}, ready *sync.WaitGroup) error {
	released := false
	release := func() {
		if !released {
			released = true
			<-sem
			ready.Done()
		}
	}
	defer release()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/servers/"+server+"/metrics/stream", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // read-only SSE body; a close error loses nothing
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sse: status %d", resp.StatusCode)
	}
	st.sseUp.Add(1)
	release()
	rd := bufio.NewReaderSize(resp.Body, 4096)
	for {
		line, err := rd.ReadSlice('\n')
		if err != nil {
			if ctx.Err() == nil {
				st.closed.Add(1)
			}
			return nil
		}
		if bytes.HasPrefix(line, []byte("data:")) {
			now := time.Now()
			if at, ok := collectedAt(line); ok {
				st.record(id, at, now)
			}
		}
	}
}

var collectedKey = []byte(`"collectedAt":"`)

// collectedAt pulls the timestamp out of a push without decoding it all.
func collectedAt(b []byte) (time.Time, bool) {
	i := bytes.Index(b, collectedKey)
	if i < 0 {
		return time.Time{}, false
	}
	b = b[i+len(collectedKey):]
	j := bytes.IndexByte(b, '"')
	if j < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b[:j]))
	return t, err == nil
}

// ---------- the streamer side ----------

func startInProcess(ctx context.Context, store *redisstore.Store, secret, addr string) (string, func(), error) {
	srv, err := newStreamer(store, secret)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	hs := httpserve.NewServer(srv.Handler(), nil)
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = hs.Shutdown(sctx)
	}, nil
}

func newStreamer(store *redisstore.Store, secret string) (*streamer.Server, error) {
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: []byte(secret)})
	if err != nil {
		return nil, err
	}
	return streamer.New(streamer.Deps{
		Store: store, Client: store.Client(), Channels: store, Verifier: v,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, streamer.Config{})
}

// childMem and askMem fetch the child's Go memory statistics.
var (
	childMem = make(chan string, 1)
	askMem   = memStats
)

// startChild re-executes this program with -role=streamer. The arguments
// that led to Main (such as "load" after localdev) are kept, so the child
// reaches Main again.
func startChild(ctx context.Context, o options, args []string, redisURL, secret string) (string, int, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", 0, nil, fmt.Errorf("find own executable: %w (use -inprocess)", err)
	}
	n := len(os.Args) - len(args)
	if n < 1 || !slices.Equal(os.Args[n:], args) {
		return "", 0, nil, errors.New("cannot re-execute the load command from this program; use -inprocess")
	}
	childArgs := append(slices.Clone(os.Args[1:n]), "-role=streamer", "-redis="+redisURL, "-prefix="+o.prefix, "-addr="+o.addr)
	cmd := exec.CommandContext(ctx, exe, childArgs...)
	cmd.Env = append(os.Environ(), "VITALS_LOAD_SECRET="+secret)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", 0, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("start streamer child: %w", err)
	}
	stop := func() {
		_ = stdin.Close() // the child shuts down when its stdin closes
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	sc := bufio.NewScanner(out)
	addrCh := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				addrCh <- a
			}
			if m, ok := strings.CutPrefix(sc.Text(), "MEMSTATS "); ok {
				select {
				case childMem <- m:
				default:
				}
			}
		}
	}()
	askMem = func() string {
		if _, err := io.WriteString(stdin, "stats\n"); err != nil {
			return ""
		}
		select {
		case m := <-childMem:
			return m
		case <-time.After(5 * time.Second):
			return ""
		}
	}
	select {
	case a := <-addrCh:
		return "http://" + a, cmd.Process.Pid, stop, nil
	case <-time.After(30 * time.Second):
		stop()
		return "", 0, nil, errors.New("streamer child did not start within 30s")
	case <-ctx.Done():
		stop()
		return "", 0, nil, ctx.Err()
	}
}

// runChild is the streamer process: it serves until its stdin closes (the
// driver ended or died) or ctx ends.
func runChild(ctx context.Context, o options, stdout io.Writer) error {
	_, _ = raiseFDLimit()
	secret := os.Getenv("VITALS_LOAD_SECRET")
	if secret == "" || o.redisURL == "" {
		return errors.New("-role=streamer is started by the load driver")
	}
	store, err := redisstore.Open(ctx, redisstore.Config{URL: o.redisURL, Prefix: o.prefix}, nil)
	if err != nil {
		return err
	}
	defer store.Close() //nolint:errcheck // load tool shutting down; nothing unsaved
	base, stop, err := startInProcess(ctx, store, secret, o.addr)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "LISTENING %s\n", strings.TrimPrefix(base, "http://"))
	eof := make(chan struct{})
	go func() {
		// Each line on stdin asks for the Go runtime's view of memory.
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			fmt.Fprintf(stdout, "MEMSTATS %s\n", memStats())
		}
		close(eof)
	}()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// memStats summarises where the process's memory is, per the Go runtime.
func memStats() string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return fmt.Sprintf("heap in use %.1f MiB, stacks %.1f MiB, other runtime %.1f MiB, goroutines %d, GC cycles %d",
		float64(m.HeapInuse)/(1<<20), float64(m.StackInuse)/(1<<20),
		float64(m.Sys-m.HeapSys-m.StackSys)/(1<<20), runtime.NumGoroutine(), m.NumGC)
}

// ---------- process helpers (Linux /proc) ----------

// raiseFDLimit lifts the soft open-file limit to the hard one and returns
// it; child processes inherit it.
func raiseFDLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return l.Cur, err
		}
	}
	return l.Cur, nil
}

// rssOf reads VmRSS of a process, in bytes.
func rssOf(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100.0

// cpuTicks is utime+stime of a process, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k, nil
}

func kib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// redisProc is a private redis-server for one run.
type redisProc struct {
	url string
	cmd *exec.Cmd
	dir string
}

func startRedis(ctx context.Context) (*redisProc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not on PATH: install it or pass -redis redis://…")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	dir, err := os.MkdirTemp("", "vitals-load-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	r := &redisProc{url: "redis://127.0.0.1:" + port, cmd: cmd, dir: dir}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 200*time.Millisecond) //nolint:noctx // bounded by its timeout; a start-up probe
		if err == nil {
			_ = c.Close()
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, errors.New("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisProc) stop() {
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	_ = os.RemoveAll(r.dir)
}
