// Package redistest gives tests a real Redis: the server named by
// VITALS_TEST_REDIS_URL, or else a throwaway redis-server from PATH started
// on a free port and removed when the tests end. Without either, tests skip
// loudly, except under CI=true, where they fail: CI must prove the store
// against the real thing.
//
// Typical use, once per package:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
//
// and in each test: r := redistest.New(t) for an isolated key prefix.
package redistest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	mu     sync.Mutex
	url    string // VITALS_TEST_REDIS_URL, or shared's URL
	reason string // why there is no Redis, when there is none
)

// Main starts the package's Redis (unless VITALS_TEST_REDIS_URL names one),
// runs the tests and stops it. Use it from TestMain.
func Main(m *testing.M) int {
	if u := os.Getenv("VITALS_TEST_REDIS_URL"); u != "" {
		url = u
		return m.Run()
	}
	s, err := start("")
	if err != nil {
		reason = err.Error()
	} else {
		url = s.URL
		defer s.Stop()
	}
	return m.Run()
}

// Redis is one test's view of the shared server.
type Redis struct {
	// URL is a redis:// URL for go-redis's ParseURL.
	URL string
	// Addr is host:port.
	Addr string
	// Prefix is unique to this test: use it as the store's key prefix so
	// tests can run in parallel against one server.
	Prefix string
}

// New returns the package's Redis with a fresh key prefix, or skips (fails
// under CI=true) when none can be had. Main must have run.
func New(tb testing.TB) *Redis {
	tb.Helper()
	mu.Lock()
	u, why := url, reason
	mu.Unlock()
	if u == "" {
		if why == "" {
			why = "redistest.Main was not called from TestMain"
		}
		Unavailable(tb, why)
	}
	addr := strings.TrimPrefix(strings.TrimPrefix(u, "redis://"), "rediss://")
	if i := strings.LastIndex(addr, "@"); i >= 0 {
		addr = addr[i+1:]
	}
	if i := strings.Index(addr, "/"); i >= 0 {
		addr = addr[:i]
	}
	return &Redis{URL: u, Addr: addr, Prefix: "t" + randHex(6) + ":"}
}

// Unavailable skips the test, or fails it under CI=true.
func Unavailable(tb testing.TB, why string) {
	tb.Helper()
	msg := "NO REAL REDIS, test not run: " + why + " (install redis-server or set VITALS_TEST_REDIS_URL)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// Server is a redis-server process owned by a test.
type Server struct {
	URL  string
	Addr string
	Port int
	dir  string
	cmd  *exec.Cmd
}

// StartServer starts a private redis-server for one test (for tests that stop
// or restart it), stopped at the end of the test.
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := start("")
	if err != nil {
		Unavailable(tb, err.Error())
	}
	tb.Cleanup(s.Stop)
	return s
}

// Stop kills the server (like a crash: no save). Safe to call twice.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	_ = os.RemoveAll(s.dir)
	s.cmd = nil
}

// Restart stops the server and starts a new one on the same port, empty.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	n, err := start(strconv.Itoa(s.Port))
	if err != nil {
		tb.Fatalf("restart redis-server: %v", err)
	}
	s.cmd, s.dir = n.cmd, n.dir
}

func start(port string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server not on PATH (Debian: apt-get install -y redis-server)")
	}
	if port == "" {
		port, err = freePort()
		if err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "vitals-redis-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "yes", "--loglevel", "warning")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	go func() { // drain so the server never blocks on a full pipe
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
	}()
	addr := "127.0.0.1:" + port
	p, _ := strconv.Atoi(port)
	s := &Server{URL: "redis://" + addr, Addr: addr, Port: p, dir: dir, cmd: cmd}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pingRaw(addr) == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pingRaw speaks just enough RESP to know the server is up, so this package
// needs no Redis client of its own.
func pingRaw(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond) //nolint:noctx // bounded by its timeout; a start-up probe has no request context
	if err != nil {
		return err
	}
	defer c.Close() //nolint:errcheck // probe connection; nothing written that matters
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close() //nolint:errcheck // only asked for a free port
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
