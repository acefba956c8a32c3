// Command coldstart measures the Lambda cold start of every function in
// template.yaml: it builds each bootstrap for this machine, then N times
// starts a fresh process against a local Lambda Runtime API that hands it one
// API Gateway v2 event (a signed, gzipped ingest batch; an authenticated
// "latest" query), and records the time from process start to the posted
// response, with a real Redis behind. It reports p50/p95, peak RSS and the
// binary sizes for this machine and for linux/arm64 (what Lambda runs).
// `make bench-coldstart` runs it.
//
// What it leaves out: Lambda's own sandbox creation and code download, which
// depend on AWS and on the zip size (reported beside).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/infra/sam"
	"github.com/vitals-dev/vitals/infra/sam/runtimeapi"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}

type config struct {
	n        int
	template string
	redisURL string
	timeout  time.Duration
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("coldstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.IntVar(&c.n, "n", 30, "cold starts per function")
	fs.StringVar(&c.template, "template", "template.yaml", "SAM template (the repository root is its directory)")
	fs.StringVar(&c.redisURL, "redis-url", getenv("VITALS_REDIS_URL"), "Redis to use (default: a throwaway redis-server from PATH)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "longest wait for one cold start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.n < 1 {
		return errors.New("-n must be at least 1")
	}
	tpl, err := sam.Load(c.template)
	if err != nil {
		return err
	}
	root := filepath.Dir(c.template)

	if c.redisURL == "" {
		url, stopRedis, err := startRedis(ctx)
		if err != nil {
			return fmt.Errorf("start redis-server (or pass -redis-url): %w", err)
		}
		defer stopRedis()
		c.redisURL = url
	}
	prefix := fmt.Sprintf("coldstart:%d:", time.Now().UnixNano())
	store, err := redisstore.Open(ctx, redisstore.Config{URL: c.redisURL, Prefix: prefix}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer cleanup(c.redisURL, prefix)
	defer store.Close() //nolint:errcheck // benchmark tool shutting down; nothing unsaved
	const serverID = "coldstart-1"
	hostKey, err := store.AddHost(ctx, serverID)
	if err != nil {
		return err
	}
	secret := auth.NewSecret()
	token, err := auth.IssueToken([]byte(secret), []string{serverID}, time.Hour, "", "", time.Now())
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "vitals-coldstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir) //nolint:errcheck // best-effort cleanup of a temp dir
	fmt.Fprintf(stderr, "building %d functions for %s/%s and linux/arm64…\n", len(tpl.Functions), runtime.GOOS, runtime.GOARCH)

	type row struct {
		id                string
		hostSize, armSize int64
		zipSize           int64
		init, first, rss  []float64
		status            int
	}
	var rows []row
	for _, f := range tpl.Functions {
		r := row{id: f.LogicalID}
		host := filepath.Join(dir, f.Name, "host", "bootstrap")
		if err := sam.BuildBootstrap(ctx, root, f.Name, host, runtime.GOOS, runtime.GOARCH); err != nil {
			return err
		}
		// The arm64 size is measured on the Makefile's own build, the one
		// sam build and make lambda ship.
		armDir := filepath.Join(dir, f.Name, "arm64")
		mk := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", root, "build-"+f.LogicalID, "ARTIFACTS_DIR="+armDir)
		if out, err := mk.CombinedOutput(); err != nil {
			return fmt.Errorf("make build-%s: %w\n%s", f.LogicalID, err, out)
		}
		zipPath := filepath.Join(dir, f.Name+".zip")
		if err := sam.ZipBootstrap(zipPath, filepath.Join(armDir, "bootstrap")); err != nil {
			return err
		}
		r.hostSize, r.armSize, r.zipSize = size(host), size(filepath.Join(armDir, "bootstrap")), size(zipPath)

		env := []string{
			"VITALS_REDIS_URL=" + c.redisURL, "VITALS_REDIS_PREFIX=" + prefix, "VITALS_LOG_LEVEL=warn",
			"VITALS_JWT_SECRET=" + secret, "AWS_LAMBDA_FUNCTION_NAME=vitals-" + f.Name,
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "AWS_REGION=eu-west-1", "TZ=UTC",
		}
		// One discarded start first, so every measured start finds the
		// binary in the page cache, as a warm Lambda host does.
		for i := -1; i < c.n; i++ {
			ev, want, err := event(f.Name, serverID, hostKey, token)
			if err != nil {
				return err
			}
			res, err := runtimeapi.RunBootstrap(ctx, host, env, ev, c.timeout)
			if err != nil {
				return fmt.Errorf("%s: %w", f.LogicalID, err)
			}
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(res.Result.Body, &resp); err != nil || res.Result.Error || resp.StatusCode != want {
				return fmt.Errorf("%s answered %d %s (error %v), want %d; log: %s", f.LogicalID, resp.StatusCode, res.Result.Body, res.Result.Error, want, res.Stderr)
			}
			r.status = resp.StatusCode
			if i < 0 {
				continue
			}
			r.init = append(r.init, ms(res.Init))
			r.first = append(r.first, ms(res.FirstResponse))
			r.rss = append(r.rss, float64(res.MaxRSS)/(1<<20))
		}
		rows = append(rows, r)
	}

	fmt.Fprintf(stdout, "Cold starts: %d per function, %s/%s, %d CPUs, %s, Redis on loopback.\n\n", c.n, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintln(stdout, "| function | answer | start → first response p50 / p95 | start → ready (init) p50 / p95 | peak RSS p50 | binary, host | binary, linux/arm64 | zip, linux/arm64 |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(stdout, "| %s | %d | %.1f / %.1f ms | %.1f / %.1f ms | %.1f MiB | %.2f MiB | %.2f MiB | %.2f MiB |\n",
			r.id, r.status, pct(r.first, 50), pct(r.first, 95), pct(r.init, 50), pct(r.init, 95), pct(r.rss, 50),
			mib(r.hostSize), mib(r.armSize), mib(r.zipSize))
	}
	return nil
}

// event is the invocation each function gets, and the status it must answer.
func event(name, serverID string, hostKey []byte, token string) ([]byte, int, error) {
	now := time.Now().UTC()
	switch name {
	case "ingest":
		batch, err := json.Marshal(metric.Batch{Samples: []metric.Sample{sample(now.Truncate(time.Second))}})
		if err != nil {
			return nil, 0, err
		}
		ev, err := sam.SignedIngestEvent(serverID, hostKey, batch, now)
		if err != nil {
			return nil, 0, err
		}
		b, err := json.Marshal(ev)
		return b, 202, err
	case "query":
		ev := sam.HTTPEvent("GET", "GET /api/servers/{id}/metrics/latest", "/api/servers/"+serverID+"/metrics/latest", "",
			map[string]string{"authorization": "Bearer " + token}, nil, false)
		b, err := json.Marshal(ev)
		return b, 200, err
	}
	return nil, 0, fmt.Errorf("no cold-start event for function %q", name)
}

func sample(at time.Time) metric.Sample {
	return metric.Sample{
		CollectedAt: at, CPUUsagePercent: 12.5, CPULoad1m: 0.5, CPULoad5m: 0.4, CPULoad15m: 0.3,
		RAMTotalBytes: 8 << 30, RAMUsedBytes: 2 << 30, RAMAvailableBytes: 6 << 30, RAMUsagePercent: 25,
		DiskTotalBytes: 100 << 30, DiskUsedBytes: 30 << 30, DiskAvailableBytes: 70 << 30, DiskUsagePercent: 30,
		NetworkRxBytes: 1 << 20, NetworkTxBytes: 1 << 19, UptimeSeconds: 3600,
	}
}

// startRedis runs a throwaway redis-server on a free loopback port.
func startRedis(ctx context.Context) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	var out bytes.Buffer
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	url := "redis://127.0.0.1:" + strconv.Itoa(port)
	opts, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opts)
	defer rdb.Close() //nolint:errcheck // benchmark tool's Redis client; nothing unsaved
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := rdb.Ping(ctx).Err(); err == nil {
			return url, stop, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, fmt.Errorf("redis-server did not answer: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cleanup deletes the run's keys from a Redis that outlives it.
func cleanup(url, prefix string) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close() //nolint:errcheck // benchmark tool's Redis client; nothing unsaved
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		rdb.Del(ctx, iter.Val())
	}
}

func size(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(n int64) float64        { return float64(n) / (1 << 20) }

// pct is the p-th percentile (nearest rank).
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
