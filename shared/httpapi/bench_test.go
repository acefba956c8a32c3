package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

// benchSample is a plausible server reading number i at t.
func benchSample(t time.Time, i int) metric.Sample {
	f := float64(i % 100)
	return metric.Sample{
		CollectedAt: t, CPUUsagePercent: 5 + f*0.7, CPULoad1m: 0.3 + f/100, CPULoad5m: 0.25, CPULoad15m: 0.2,
		RAMTotalBytes: 8 << 30, RAMUsedBytes: 3<<30 + uint64(i%1000)<<20, RAMAvailableBytes: 5<<30 - uint64(i%1000)<<20, RAMUsagePercent: 37.5 + f/10,
		DiskTotalBytes: 100 << 30, DiskUsedBytes: 40 << 30, DiskAvailableBytes: 60 << 30, DiskUsagePercent: 40,
		NetworkRxBytes: uint64(i) * 12345, NetworkTxBytes: uint64(i) * 6789, UptimeSeconds: uint64(86400 + i*10),
	}
}

// BenchmarkIngest measures samples/s into a real local Redis two ways in one
// run: "store" calls Store.Ingest directly (the ceiling: the same Redis
// command sequence, pipelined, with no HTTP), "http" sends each batch as a
// reporter does (JSON, gzip, HMAC signature, POST over loopback to an
// httptest server running the real ingest handler, which verifies, gunzips,
// decodes, validates and calls the same Store.Ingest). Samples are 10 s
// apart, every one new; one client at a time.
func BenchmarkIngest(b *testing.B) {
	for _, size := range []int{1, 50} {
		for _, mode := range []string{"store", "http"} {
			b.Run(mode+"/batch="+strconv.Itoa(size), func(b *testing.B) {
				benchIngest(b, mode, size)
			})
		}
	}
}

func benchIngest(b *testing.B, mode string, size int) {
	r := redistest.New(b)
	base := time.Now().Truncate(time.Hour).Add(-24 * time.Hour)
	var clock atomic.Int64
	clock.Store(base.Unix())
	now := func() time.Time { return time.Unix(clock.Load(), 0) }
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix, cfg.Now = r.URL, r.Prefix, now
	store, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	const server = "bench-1"
	key, err := store.AddHost(context.Background(), server)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Now: now}))
	defer srv.Close()
	client := srv.Client()
	var zbuf bytes.Buffer
	zw := gzip.NewWriter(&zbuf)

	batch := make([]metric.Sample, size)
	t, i := base, 0
	b.ResetTimer()
	for range b.N {
		for j := range batch {
			i++
			t = t.Add(10 * time.Second)
			batch[j] = benchSample(t, i)
		}
		clock.Store(t.Unix())
		if mode == "store" {
			res, err := store.Ingest(context.Background(), server, batch)
			if err != nil || res.Accepted != size {
				b.Fatalf("%+v %v", res, err)
			}
			continue
		}
		raw, err := json.Marshal(metric.Batch{Samples: batch})
		if err != nil {
			b.Fatal(err)
		}
		zbuf.Reset()
		zw.Reset(&zbuf)
		zw.Write(raw)
		zw.Close()
		ts := t.Unix()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/ingest", bytes.NewReader(zbuf.Bytes()))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", "gzip")
		req.Header.Set(auth.HeaderServer, server)
		req.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(auth.HeaderSignature, auth.Sign(key, ts, server, zbuf.Bytes()))
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			b.Fatalf("%d %s", res.StatusCode, body)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkIngestConcurrent is BenchmarkIngest with 8 reporters posting at
// once, as a fleet does: each goroutine is its own enrolled host sending
// batches of 50, so the handler's work (key lookup, gunzip, decode,
// validation) overlaps other requests' Redis time. "store" is the same
// concurrency straight into Store.Ingest, the ceiling. Samples are 10 s
// apart per host, every one new. The store's clock is the newest sample
// handed out, so every sample is current and lands in every tier (with a
// real clock, months-old samples would skip the short tiers and flatter
// the figure); the handler keeps the real clock for the signature window,
// and the samples start far enough back to stay in its past.
func BenchmarkIngestConcurrent(b *testing.B) {
	for _, clients := range []int{1, 8} {
		for _, mode := range []string{"store", "http"} {
			b.Run(mode+"/clients="+strconv.Itoa(clients)+"/batch=50", func(b *testing.B) {
				benchIngestConcurrent(b, mode, clients, 50)
			})
		}
	}
}

func benchIngestConcurrent(b *testing.B, mode string, clients, size int) {
	r := redistest.New(b)
	base := time.Now().Add(-60 * 24 * time.Hour).Truncate(time.Hour)
	var clock atomic.Int64 // newest sample time handed out, unix seconds
	clock.Store(base.Unix())
	advance := func(t time.Time) {
		for {
			c := clock.Load()
			if t.Unix() <= c || clock.CompareAndSwap(c, t.Unix()) {
				return
			}
		}
	}
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	cfg.Now = func() time.Time { return time.Unix(clock.Load(), 0) }
	store, err := redisstore.Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	keys := make([][]byte, clients)
	for c := range keys {
		if keys[c], err = store.AddHost(context.Background(), "bench-"+strconv.Itoa(c)); err != nil {
			b.Fatal(err)
		}
	}
	srv := httptest.NewServer(httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store}))
	defer srv.Close()
	transport := srv.Client().Transport.(*http.Transport)
	transport.MaxIdleConnsPerHost = clients
	client := &http.Client{Transport: transport}

	var next atomic.Int64 // batches handed out
	var errs atomic.Value
	done := make(chan struct{})
	b.ResetTimer()
	for c := range clients {
		go func() {
			defer func() { done <- struct{}{} }()
			server := "bench-" + strconv.Itoa(c)
			batch := make([]metric.Sample, size)
			t, i := base, 0
			var zbuf bytes.Buffer
			zw := gzip.NewWriter(&zbuf)
			for next.Add(1) <= int64(b.N) {
				for j := range batch {
					i++
					t = t.Add(10 * time.Second)
					batch[j] = benchSample(t, i)
				}
				advance(t)
				if mode == "store" {
					if res, err := store.Ingest(context.Background(), server, batch); err != nil || res.Accepted != size {
						errs.Store(fmt.Errorf("%+v %w", res, err))
						return
					}
					continue
				}
				raw, _ := json.Marshal(metric.Batch{Samples: batch})
				zbuf.Reset()
				zw.Reset(&zbuf)
				zw.Write(raw)
				zw.Close()
				ts := time.Now().Unix()
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/ingest", bytes.NewReader(zbuf.Bytes()))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Content-Encoding", "gzip")
				req.Header.Set(auth.HeaderServer, server)
				req.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
				req.Header.Set(auth.HeaderSignature, auth.Sign(keys[c], ts, server, zbuf.Bytes()))
				res, err := client.Do(req)
				if err != nil {
					errs.Store(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var got metric.IngestResult
				if res.StatusCode != http.StatusAccepted || json.Unmarshal(body, &got) != nil || got.Accepted != size {
					errs.Store(fmt.Errorf("%d %s", res.StatusCode, body))
					return
				}
			}
		}()
	}
	for range clients {
		<-done
	}
	if err, _ := errs.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "samples/s")
}
