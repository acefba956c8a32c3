package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// localRedis is the Redis localdev runs against, and how to stop it.
type localRedis struct {
	URL  string
	Kind string // "external", "redis-server" or "embedded"
	stop func()
}

// provisionRedis picks Redis per the local run contract: VITALS_REDIS_URL if
// set; else a redis-server from PATH with its data under dataDir (so history
// survives restarts of make dev); else an embedded in-memory Redis, with a
// warning, so the stack still comes up with zero setup.
func provisionRedis(ctx context.Context, url, dataDir string, log *slog.Logger) (*localRedis, error) {
	if url != "" {
		return &localRedis{URL: url, Kind: "external", stop: func() {}}, nil
	}
	bin, err := exec.LookPath("redis-server")
	if err == nil {
		r, err := startRedisServer(ctx, bin, dataDir)
		if err == nil {
			return r, nil
		}
		log.Warn("could not start redis-server; using an embedded in-memory Redis instead (data is lost on exit)", "err", err)
	} else {
		log.Warn("no redis-server on PATH: using an embedded in-memory Redis (data is lost on exit). Install one with: sudo apt-get install -y redis-server")
	}
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return &localRedis{URL: "redis://" + m.Addr(), Kind: "embedded", stop: m.Close}, nil
}

func startRedisServer(ctx context.Context, bin, dataDir string) (*localRedis, error) {
	// redis-server changes into --dir before it opens --logfile, so a
	// relative path would be resolved twice.
	dataDir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logFile := filepath.Join(dataDir, "redis.log")
	// Snapshots every minute keep the local history across restarts without
	// an append-only log's write load.
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--dir", dataDir, "--dbfilename", "dump.rdb", "--save", "60 1",
		"--appendonly", "no", "--protected-mode", "yes", "--loglevel", "warning",
		"--logfile", logFile)
	// What it prints before its log file is open (a bad flag, an unopenable
	// log) goes to stderr; keep it for the error message. One writer for
	// both, so exec calls it from one goroutine at a time.
	var early strings.Builder
	out := &limitedWriter{w: &early, n: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		// SIGTERM lets redis-server save its snapshot before it exits.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := ping(addr)
		if err == nil {
			return &localRedis{URL: "redis://" + addr, Kind: "redis-server", stop: stop}, nil
		}
		select {
		case <-exited: // Wait has finished copying its output
			return nil, fmt.Errorf("redis-server exited at start: %s", redisFailure(early.String(), logFile))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return nil, fmt.Errorf("redis-server on %s did not come up: %w", addr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// redisFailure is the last thing redis-server said: its stderr, else the
// tail of its log file.
func redisFailure(stderr, logFile string) string {
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		if b, err := os.ReadFile(logFile); err == nil {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			msg = strings.Join(lines[max(0, len(lines)-3):], " / ")
		}
	}
	if msg == "" {
		return "no output (see " + logFile + ")"
	}
	return msg
}

// limitedWriter keeps the first n bytes written to it and discards the rest.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond) //nolint:noctx // bounded by its timeout; a start-up probe
	if err != nil {
		return err
	}
	defer c.Close() //nolint:errcheck // probe connection; nothing written that matters
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	// "-LOADING" while it reads its snapshot: not ready yet.
	if !strings.HasPrefix(line, "+PONG") {
		return errors.New(strings.TrimSpace(line))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close() //nolint:errcheck // only asked for a free port
	return l.Addr().(*net.TCPAddr).Port, nil
}
