// Package ingestmem measures what heavy ingest requests cost the ingest
// process: it runs the real ingest function (functions/ingest, built from
// this tree unless -bin names a binary) as a child process on loopback with
// a private redis-server, enrolls one host per request, posts N maximal
// batches at once (by default 1,000 samples × 38 instances each, as a
// reporter sends after a long outage) and reads the child's peak RSS
// (VmHWM in /proc/<pid>/status). Every request is retried on 503 after its
// Retry-After, as the reporter does, until it is accepted, so the figure
// is the cost of getting all N batches stored.
//
// localdev wires it as `go run ./localdev ingestmem [flags]`.
package ingestmem

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

type options struct {
	bin       string
	levels    string
	samples   int
	instances int
	timeout   time.Duration
}

// Main runs the measurement described by args (see -h) and writes the
// report to stdout.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ingestmem", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var o options
	fs.StringVar(&o.bin, "bin", "", "ingest binary to measure (default: go build ./functions/ingest from the current directory)")
	fs.StringVar(&o.levels, "n", "1,8,32", "comma-separated numbers of concurrent requests; each level runs in a fresh ingest process")
	fs.IntVar(&o.samples, "samples", 1000, "samples per batch")
	fs.IntVar(&o.instances, "instances", 38, "instances per sample")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "hard limit per level")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: localdev ingestmem [flags]\n\nPeak RSS of a real ingest process serving N heavy batches at once.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var levels []int
	for f := range strings.SplitSeq(o.levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-n: %q is not a positive number", f)
		}
		levels = append(levels, n)
	}
	tmp, err := os.MkdirTemp("", "vitals-ingestmem-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // best effort: a temp dir of the measurement tool
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "ingest")
		build := exec.CommandContext(ctx, "go", "build", "-o", o.bin, "github.com/vitals-dev/vitals/functions/ingest")
		build.Stdout, build.Stderr = stdout, stdout
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./functions/ingest (run inside the repository, or pass -bin): %w", err)
		}
	}
	redisURL, stopRedis, err := startRedis(ctx, tmp)
	if err != nil {
		return err
	}
	defer stopRedis()

	fmt.Fprintf(stdout, "batch: %d samples x %d instances\n", o.samples, o.instances)
	fmt.Fprintln(stdout, "| concurrent | accepted | 503 answers (retried) | other answers | wall time | peak RSS (VmHWM) | RSS after |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|")
	for i, n := range levels {
		r, err := measure(ctx, o, redisURL, fmt.Sprintf("mem%d:", i), n, stdout)
		if err != nil {
			return fmt.Errorf("%d concurrent: %w", n, err)
		}
		other := strconv.Itoa(r.other)
		if r.firstOther != "" {
			other += " (" + r.firstOther + ")"
		}
		fmt.Fprintf(stdout, "| %d | %d | %d | %s | %s | %s | %s |\n", n, r.accepted, r.busy, other, r.wall.Round(10*time.Millisecond), mib(r.hwm), mib(r.rss))
	}
	return nil
}

type result struct {
	accepted, busy, other int
	firstOther            string
	wall                  time.Duration
	hwm, rss              int64
}

// measure runs one level: a fresh ingest child, n hosts, n batches at once.
func measure(ctx context.Context, o options, redisURL, prefix string, n int, log io.Writer) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = redisURL, prefix
	store, err := redisstore.Open(ctx, cfg, nil)
	if err != nil {
		return result{}, err
	}
	defer func() { _ = store.Close() }() // the tool is done with Redis; nothing unsaved
	type host struct {
		id   string
		key  []byte
		body []byte
	}
	hosts := make([]host, n)
	var zsize, jsize int
	for i := range hosts {
		h := &hosts[i]
		h.id = fmt.Sprintf("heavy-%d", i)
		if h.key, err = store.AddHost(ctx, h.id); err != nil {
			return result{}, err
		}
		raw := heavyBatch(h.id, o.samples, o.instances, uint64(i))
		h.body = gz(raw)
		jsize, zsize = len(raw), len(h.body)
	}
	fmt.Fprintf(log, "(%d concurrent: each body %.1f MiB JSON, %d KiB gzipped)\n", n, float64(jsize)/(1<<20), zsize>>10)

	addr, err := freeAddr()
	if err != nil {
		return result{}, err
	}
	child := exec.Command(o.bin)
	child.Env = append(os.Environ(),
		"VITALS_ADDR="+addr, "VITALS_REDIS_URL="+redisURL, "VITALS_REDIS_PREFIX="+prefix,
		"VITALS_LOG_LEVEL=warn", "VITALS_LOG_FORMAT=text")
	child.Stderr = io.Discard
	if err := child.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	if err := waitListening(ctx, addr); err != nil {
		return result{}, err
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}}
	var mu sync.Mutex
	var res result
	var wg sync.WaitGroup
	start := make(chan struct{})
	began := time.Now()
	for _, h := range hosts {
		wg.Go(func() {
			<-start
			for ctx.Err() == nil {
				status, retry, msg, err := post(ctx, client, "http://"+addr+"/api/ingest", h.id, h.key, h.body)
				mu.Lock()
				switch {
				case err != nil:
					res.other++
				case status == http.StatusAccepted:
					res.accepted++
				case status == http.StatusServiceUnavailable:
					res.busy++
				default:
					res.other++
					if res.firstOther == "" {
						res.firstOther = fmt.Sprintf("%d %s", status, msg)
					}
				}
				if err != nil && res.firstOther == "" {
					res.firstOther = err.Error()
				}
				mu.Unlock()
				if err == nil && status != http.StatusServiceUnavailable {
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(max(retry, 100*time.Millisecond)):
				}
			}
		})
	}
	close(start)
	wg.Wait()
	res.wall = time.Since(began)
	if res.hwm, err = procStatus(child.Process.Pid, "VmHWM:"); err != nil {
		return res, err
	}
	res.rss, err = procStatus(child.Process.Pid, "VmRSS:")
	return res, err
}

// post sends one signed batch as the reporter does and returns the status
// and the Retry-After hint.
func post(ctx context.Context, c *http.Client, url, server string, key, body []byte) (int, time.Duration, string, error) {
	ts := time.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set(auth.HeaderServer, server)
	req.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(auth.HeaderSignature, auth.Sign(key, ts, server, body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close() //nolint:errcheck // read to the limit above; a close error changes no answer
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, time.Duration(secs) * time.Second, strings.TrimSpace(string(msg)), nil
}

// heavyBatch is n samples 10 s apart ending now, each with the given number
// of instances, values varying as a real host's do (seeded per host so runs
// are comparable).
func heavyBatch(server string, n, instances int, seed uint64) []byte {
	rnd := rand.New(rand.NewPCG(seed, 42)) //nolint:gosec // test data, seeded to be repeatable: not a secret
	end := time.Now().Add(-time.Minute).Truncate(time.Second)
	names := make([]string, instances)
	ids := make([]string, instances)
	for j := range names {
		names[j] = fmt.Sprintf("w%02d", j)
		ids[j] = metric.InstanceUUID(server, names[j])
	}
	// Values move a little from one sample to the next, as a host's do,
	// and decimals are rounded to one place: the batch compresses
	// about as well as a real spool (roughly 10:1), not like a constant.
	r1 := func(f float64) float64 { return math.Round(f*10) / 10 }
	samples := make([]metric.Sample, n)
	var rx, tx uint64
	dr, dw, mem := make([]uint64, instances), make([]uint64, instances), make([]uint64, instances)
	for j := range mem {
		mem[j] = (16 + rnd.Uint64N(64)) << 20
	}
	cpu := 20.0
	for i := range samples {
		rx += rnd.Uint64N(1 << 16)
		tx += rnd.Uint64N(1 << 15)
		cpu = min(100, max(0, cpu+rnd.NormFloat64()*3))
		s := metric.Sample{
			CollectedAt:     end.Add(-time.Duration(n-1-i) * 10 * time.Second),
			CPUUsagePercent: r1(cpu), CPULoad1m: r1(cpu / 25), CPULoad5m: r1(cpu / 30), CPULoad15m: r1(cpu / 35),
			RAMTotalBytes: 16 << 30, RAMUsedBytes: 6<<30 + uint64(i)<<12, RAMAvailableBytes: 10<<30 - uint64(i)<<12, RAMUsagePercent: r1(37.5 + float64(i)/1e3),
			DiskTotalBytes: 500 << 30, DiskUsedBytes: 200<<30 + uint64(i)<<20, DiskAvailableBytes: 300<<30 - uint64(i)<<20, DiskUsagePercent: r1(40 + float64(i)/1e3),
			NetworkRxBytes: rx, NetworkTxBytes: tx, UptimeSeconds: uint64(86400 + 10*i),
		}
		for j := range instances {
			dr[j] += rnd.Uint64N(1 << 6)
			dw[j] += rnd.Uint64N(1 << 6)
			mem[j] += rnd.Uint64N(1<<12) - 1<<11
			s.Instances = append(s.Instances, metric.InstanceSample{
				InstanceID: ids[j], Name: names[j],
				CPUUsagePercent: r1(rnd.Float64() * 100 / float64(instances)),
				MemoryUsedBytes: mem[j], MemoryUsagePercent: r1(float64(mem[j]) / float64(16<<30) * 100),
				DiskReadBytes: dr[j], DiskWriteBytes: dw[j],
			})
		}
		samples[i] = s
	}
	b, err := json.Marshal(metric.Batch{ServerID: server, Samples: samples})
	if err != nil {
		panic(err) // finite values only
	}
	return b
}

func gz(p []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write(p)
	_ = zw.Close()
	return b.Bytes()
}

// procStatus reads one kB field of /proc/<pid>/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("ingest did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startRedis runs a private, non-persistent redis-server on loopback.
func startRedis(ctx context.Context, dir string) (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("redis-server not on PATH")
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server: %w", err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	if err := waitListening(ctx, addr); err != nil {
		stop()
		return "", nil, errors.New("redis-server did not start")
	}
	return "redis://" + addr, stop, nil
}
