// Package reporter is the Vitals host agent: it collects the host's health
// (package collector), writes every sample to a durable spool (package
// spool) and pushes the spool to the ingest endpoint in signed, gzipped
// batches, retrying with backoff until the server has it.
//
// An Agent runs as a daemon (Run), once per cron invocation (Once), or just
// collects (Collect). localdev embeds the same Agent in-process.
package reporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vitals-dev/vitals/reporter/collector"
	"github.com/vitals-dev/vitals/reporter/spool"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Agent collects samples and delivers them. Collect may be called
// concurrently with Run; Run and Once must not overlap on one state
// directory (a lock file enforces it across processes too).
type Agent struct {
	cfg    Config
	logger *slog.Logger
	send   *sender

	mu   sync.Mutex // guards coll and lastAt: one collection at a time
	coll *collector.Set
	// lastAt is the second of the last sample: ingest keeps one sample per
	// server and second, so a second sample in the same second is skipped.
	lastAt time.Time

	collected, sent, rejected atomic.Uint64
	accepted, duplicates      atomic.Uint64
	stale                     atomic.Uint64
	spoolStats                atomic.Pointer[spool.Stats]
}

// Stats counts what an Agent did since it was made.
type Stats struct {
	// Collected samples were written to the spool.
	Collected uint64
	// Sent samples were accepted by ingest (duplicates included).
	Sent uint64
	// Accepted, Duplicates and Stale split Sent as the ingest counted
	// them: new samples, samples it already had (a re-send after a lost
	// answer), and samples older than its max sample age, dropped.
	Accepted, Duplicates, Stale uint64
	// Rejected samples were refused by ingest as invalid data (400, or 413
	// for a single sample) and dropped. No other answer drops a sample.
	Rejected uint64
	// Pending samples wait in the spool; SpoolDropped were discarded by
	// its size or age bound (since the spool was created).
	Pending      int
	SpoolDropped uint64
}

// New checks cfg and builds an Agent. It does no I/O: the spool and the
// state directory are opened by Run and Once.
func New(cfg Config, logger *slog.Logger) (*Agent, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, configError(err)
	}
	coll, err := collector.New(collector.Options{
		ServerID:        cfg.ServerID,
		MainDisk:        cfg.MainDisk,
		Instances:       cfg.Instances,
		Docker:          cfg.Docker,
		DockerSocket:    cfg.DockerSocket,
		HostProc:        cfg.HostProc,
		HostSys:         cfg.HostSys,
		HostEtc:         cfg.HostEtc,
		HostRoot:        cfg.HostRoot,
		BaselineWindow:  cfg.BaselineWindow,
		MaxStateAge:     max(time.Hour, 3*cfg.Interval),
		ReporterVersion: cfg.Version,
		Now:             cfg.Now,
	}, logger)
	if err != nil {
		return nil, configError(err)
	}
	a := &Agent{cfg: cfg, logger: logger, coll: coll}
	a.send = &sender{
		url:       cfg.IngestURL,
		serverID:  cfg.ServerID,
		key:       cfg.HostKey,
		client:    cfg.HTTPClient,
		timeout:   cfg.Timeout,
		userAgent: "vitals-reporter/" + orUnknown(cfg.Version),
		now:       cfg.Now,
	}
	return a, nil
}

func orUnknown(v string) string {
	if v == "" {
		return "dev"
	}
	return v
}

// Stats returns the counters so far.
func (a *Agent) Stats() Stats {
	st := Stats{
		Collected: a.collected.Load(), Sent: a.sent.Load(), Rejected: a.rejected.Load(),
		Accepted: a.accepted.Load(), Duplicates: a.duplicates.Load(), Stale: a.stale.Load(),
	}
	if sp := a.spoolStats.Load(); sp != nil {
		st.Pending, st.SpoolDropped = sp.Pending, sp.Dropped
	}
	return st
}

// Collect reads one sample without spooling or sending it. The first call
// on an Agent without saved counters waits BaselineWindow for a second CPU
// reading. It shares the previous reading with Run: called between two ticks
// it shortens the window the next tick's CPU and rates cover, nothing worse.
func (a *Agent) Collect(ctx context.Context) (metric.Sample, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.coll.Collect(ctx)
}

// Run collects every Interval and delivers in the background until ctx ends,
// then keeps sending for up to ShutdownTimeout and returns nil. Samples not
// delivered by then stay in the spool for the next start.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.cfg.validateSending(); err != nil {
		return configError(err)
	}
	st, err := a.openState()
	if err != nil {
		return err
	}
	defer st.close()
	a.logger.Info("reporter running", "config", a.cfg, "pending", st.spool.Stats().Pending)

	sendCtx, stopSending := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSending()
	wake := make(chan struct{}, 1)
	finalFlush := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		a.sendLoop(sendCtx, st.spool, wake, finalFlush)
	}()

	ticker := time.NewTicker(a.cfg.Interval)
	defer ticker.Stop()
	for {
		if err := a.collectToSpool(ctx, st.spool); err != nil && ctx.Err() == nil {
			a.logger.Error("sample lost", "err", err)
		}
		select {
		case wake <- struct{}{}:
		default: // the sender is already due to look
		}
		select {
		case <-ctx.Done():
			a.shutdown(st, finalFlush, senderDone, stopSending)
			return nil
		case <-ticker.C:
		}
	}
}

// shutdown gives the sender ShutdownTimeout to empty the spool, then stops
// it and saves the counters so the next start needs no baseline pause.
func (a *Agent) shutdown(st *state, finalFlush, senderDone chan struct{}, stopSending context.CancelFunc) {
	close(finalFlush)
	timer := time.NewTimer(a.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-senderDone:
	case <-timer.C:
		stopSending()
		<-senderDone
	}
	a.saveCounters(st.dir)
	a.noteSpool(st.spool)
	s := a.Stats()
	a.logger.Info("reporter stopped", "sent", s.Sent, "pending", s.Pending, "rejected", s.Rejected, "stale", s.Stale, "spoolDropped", s.SpoolDropped)
}

// sendLoop delivers whatever the spool holds, waking on each new sample.
// Failures are retried forever (with backoff); only ctx ends it. Once
// finalFlush is closed (no more samples will come) it flushes one last time
// and returns.
func (a *Agent) sendLoop(ctx context.Context, sp *spool.Spool, wake, finalFlush <-chan struct{}) {
	final := false
	for {
		err := a.flush(ctx, sp, a.cfg.BatchSize, 0)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// Only spool errors reach here (delivery errors are retried
			// inside flush); pause rather than spin.
			a.logger.Error("reading the spool failed", "err", err)
			if final || !sleep(ctx, a.cfg.RetryMax) {
				return
			}
			continue
		}
		if final {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-finalFlush:
			// A sample may have been spooled after the flush above
			// emptied the spool: one more pass.
			final = true
		}
	}
}

// Once collects one sample, spools it, and sends everything the spool holds,
// trying up to OnceAttempts times. It returns nil only if everything was
// delivered: the exit code of `reporter once` says whether delivery
// happened. Samples that could not be sent (network, server, 401/403, any
// status but 400) wait for the next run; samples the server refused as
// invalid data (400) are dropped and make it fail too.
func (a *Agent) Once(ctx context.Context) error {
	if err := a.cfg.validateSending(); err != nil {
		return configError(err)
	}
	st, err := a.openState()
	if err != nil {
		return err
	}
	defer st.close()
	rejectedBefore := a.rejected.Load()
	collectErr := a.collectToSpool(ctx, st.spool)
	a.saveCounters(st.dir)
	if err := a.flush(ctx, st.spool, metric.MaxSamplesPerBatch, a.cfg.OnceAttempts); err != nil {
		return err
	}
	a.noteSpool(st.spool)
	if n := a.rejected.Load() - rejectedBefore; n > 0 {
		return fmt.Errorf("ingest refused %d samples (see the log); they are dropped", n)
	}
	if collectErr != nil {
		return fmt.Errorf("spool delivered, but this run's sample was lost: %w", collectErr)
	}
	if n := st.spool.Stats().Pending; n > 0 {
		return fmt.Errorf("%d samples not delivered; they stay spooled for the next run", n)
	}
	return nil
}

// collectToSpool collects one sample and appends it to the spool (fsync'd):
// from then on a crash cannot lose it.
func (a *Agent) collectToSpool(ctx context.Context, sp *spool.Spool) error {
	a.mu.Lock()
	s, err := a.coll.Collect(ctx)
	if err == nil && !a.lastAt.IsZero() && s.CollectedAt.Truncate(time.Second).Equal(a.lastAt) {
		a.mu.Unlock()
		a.logger.Debug("skipping a second sample in the same second")
		return nil
	}
	if err == nil {
		a.lastAt = s.CollectedAt.Truncate(time.Second)
	}
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode sample: %w", err)
	}
	if err := sp.Append(s.CollectedAt, b); err != nil {
		return err
	}
	a.collected.Add(1)
	a.noteSpool(sp)
	a.logger.Debug("sample spooled", "collectedAt", s.CollectedAt.Format(time.RFC3339Nano))
	return nil
}

func (a *Agent) noteSpool(sp *spool.Spool) {
	st := sp.Stats()
	if old := a.spoolStats.Swap(&st); old != nil && st.Dropped > old.Dropped {
		a.logger.Warn("spool full or samples too old: oldest samples dropped", "dropped", st.Dropped-old.Dropped, "droppedTotal", st.Dropped)
	}
}

// flush sends the spool's content in order, batch by batch, acknowledging
// each batch the server accepted, and each single sample it refused as
// invalid data (400; a refused batch of several is halved until the
// refused sample is alone, so it does not take valid ones along). Any other
// failure keeps the batch: it waits (backoff or Retry-After; a long backoff
// for 401/403) and tries the same batch again; with maxAttempts > 0 it gives
// up after that many failed attempts (after the first 401/403) and returns an
// error, with 0 it only stops when ctx ends.
func (a *Agent) flush(ctx context.Context, sp *spool.Spool, batchSize, maxAttempts int) error {
	failures, authFailures := 0, 0
	unsplit := 0 // batchSize before a 400 made us split, to return to
	for {
		recs, err := sp.Peek(batchSize, a.cfg.MaxBatchBytes)
		if err != nil {
			return err
		}
		a.noteSpool(sp)
		if len(recs) == 0 {
			return nil
		}
		payloads := make([][]byte, len(recs))
		for i, r := range recs {
			payloads[i] = r.Data
		}
		body := a.send.gzip.compress(encodeBatch(a.cfg.ServerID, a.cfg.Interval, payloads))
		res := a.send.post(ctx, body)
		switch res.outcome {
		case delivered:
			if err := sp.Ack(recs[len(recs)-1].End); err != nil {
				return err
			}
			a.sent.Add(uint64(len(recs)))
			a.accepted.Add(uint64(max(res.result.Accepted, 0)))
			a.duplicates.Add(uint64(max(res.result.Duplicates, 0)))
			a.stale.Add(uint64(max(res.result.Stale, 0)))
			if authFailures > 0 {
				a.logger.Info("ingest accepts this host's credentials again; sending the spooled samples", "attempts", failures+1, "pending", sp.Stats().Pending)
			} else if failures > 0 {
				a.logger.Info("ingest reachable again", "attempts", failures+1)
			}
			a.logger.Debug("batch delivered", "samples", len(recs), "accepted", res.result.Accepted, "duplicates", res.result.Duplicates)
			if n := res.result.InstancesOverLimit; n > 0 {
				a.logger.Warn("ingest stored the batch but left out new instances: this server is at its instance limit", "instances", n,
					"hint", "give instances stable names (instance ids come from server id + name, so names that change per deploy make new ones), or raise VITALS_MAX_INSTANCES_PER_SERVER on the ingest function")
			}
			if n := res.result.InstancesRefused; n > 0 {
				a.logger.Warn("ingest stored the batch but refused some instances' readings: their ids are not this server's", "instances", n, "first", res.result.RefusedReason,
					"hint", "leave the instance's id out of the config (it is then derived from server id + name), or have an operator run 'vitalsctl instance bind <serverId> <instanceId> <name>'")
			}
			if n := res.result.Stale; n > 0 {
				a.logger.Warn("ingest dropped samples as too old", "samples", n,
					"hint", "they waited in the spool longer than the ingest function's VITALS_MAX_SAMPLE_AGE (default 7d); keep --spool-max-age at or under it")
			}
			failures, authFailures = 0, 0
			batchSize = max(batchSize, 1)
			continue
		case tooLarge:
			if len(recs) > 1 {
				batchSize = len(recs) / 2
				a.logger.Warn("ingest refused the batch as too large; halving it", "samples", len(recs))
				continue
			}
			fallthrough // one sample too large for the server: never deliverable
		case permanent:
			if len(recs) > 1 {
				// One invalid sample (say, dated ahead after an NTP step)
				// must not take the valid ones with it: halve until the
				// refused one is alone.
				if unsplit == 0 {
					unsplit = batchSize
				}
				batchSize = len(recs) / 2
				a.logger.Info("ingest refused the batch as invalid data; halving it to find the refused sample", "samples", len(recs), "err", res.err)
				continue
			}
			// Only a verdict on the data itself (400, or 413 for one
			// sample) lets a sample go.
			if err := sp.Ack(recs[len(recs)-1].End); err != nil {
				return err
			}
			a.rejected.Add(uint64(len(recs)))
			a.logger.Error("ingest refused a sample as invalid data; it is dropped", "samples", len(recs), "status", res.status, "err", res.err, "hint", refusalHint(res.status))
			if unsplit > 0 { // found it: back to whole batches
				batchSize, unsplit = unsplit, 0
			}
			continue
		case unauthorized:
			// The key is refused (rotated, revoked, or the store lost it):
			// keep everything and back off long, since only an operator
			// can fix it; one log line per backoff step says what to do.
			if ctx.Err() != nil {
				return ctx.Err()
			}
			authFailures++
			failures++
			pending := sp.Stats().Pending
			if maxAttempts > 0 {
				// once (cron): retrying within the run cannot help.
				a.logger.Error("ingest refused this host's credentials; samples stay spooled", "status", res.status, "err", res.err, "pending", pending, "hint", refusalHint(res.status))
				return fmt.Errorf("%w (status %d; check VITALS_SERVER_ID, the host key and the clock, see the log): %d samples stay spooled for the next run", errUnauthorized, res.status, pending)
			}
			wait := retryWait(res, authFailures-1, a.cfg.AuthRetryMin, a.cfg.AuthRetryMax)
			a.logger.Error("ingest refused this host's credentials; samples stay spooled", "status", res.status, "err", res.err, "pending", pending, "retryIn", wait.Round(time.Millisecond), "hint", refusalHint(res.status))
			if !sleep(ctx, wait) {
				return ctx.Err()
			}
			continue
		}
		// retryable
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		if maxAttempts > 0 && failures >= maxAttempts {
			return fmt.Errorf("delivery failed after %d attempts: %w", failures, res.err)
		}
		wait := retryWait(res, failures-1, a.cfg.RetryMin, a.cfg.RetryMax)
		if maxAttempts > 0 && wait > onceMaxWait {
			// once: the next run (a minute later under cron or the timer)
			// comes sooner than a long Retry-After; waiting would only
			// collide with it (or with the timer unit's time limit).
			return fmt.Errorf("ingest asks to retry in %s (%w); %d samples stay spooled for the next run", wait.Round(time.Second), res.err, sp.Stats().Pending)
		}
		if res.status != 0 {
			a.logger.Warn("ingest did not take the batch; it stays spooled and is sent again", "status", res.status, "err", res.err, "pending", sp.Stats().Pending, "retryIn", wait.Round(time.Millisecond), "hint", refusalHint(res.status))
		} else {
			a.logger.Warn("ingest unreachable; samples stay spooled", "err", res.err, "pending", sp.Stats().Pending, "retryIn", wait.Round(time.Millisecond))
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// onceMaxWait is the longest pause Once makes between attempts.
const onceMaxWait = 20 * time.Second

// errUnauthorized is what Once returns when ingest refused the host's
// credentials: the samples stay spooled.
var errUnauthorized = errors.New("ingest refused this host's credentials")

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// state is an open state directory: its lock, spool and path.
type state struct {
	dir   string
	lock  *os.File
	spool *spool.Spool
}

// ErrLocked means another reporter holds the state directory.
var ErrLocked = errors.New("state directory in use by another reporter")

// openState locks the state directory, opens the spool and restores the
// counters of a previous run.
func (a *Agent) openState() (*state, error) {
	dir := a.cfg.StateDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	// An flock dies with its process, so a kill -9 never leaves a stale lock.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = lock.Close() // already failing; the lock file holds no data
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock state dir: %w", err)
	}
	sp, err := spool.Open(filepath.Join(dir, "spool"), spool.Options{
		MaxBytes: a.cfg.SpoolMaxBytes,
		MaxAge:   a.cfg.SpoolMaxAge,
		Now:      a.cfg.Now,
	})
	if err != nil {
		_ = lock.Close() // already failing; the lock file holds no data
		return nil, err
	}
	a.loadCounters(dir)
	a.noteSpool(sp)
	return &state{dir: dir, lock: lock, spool: sp}, nil
}

func (s *state) close() {
	_ = s.spool.Close() // every record was fsynced by Append; nothing is left to lose
	_ = s.lock.Close()  // releases the flock; the lock file holds no data
}

const countersFile = "counters.json"

// loadCounters restores the previous CPU/network/instance readings so the
// first sample of this run needs no baseline pause. A missing or unreadable
// file just means a baseline.
func (a *Agent) loadCounters(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, countersFile))
	if err != nil {
		return
	}
	var st collector.State
	if json.Unmarshal(b, &st) != nil {
		return
	}
	a.mu.Lock()
	a.coll.Restore(st)
	a.mu.Unlock()
}

// saveCounters writes the readings for the next run (write and rename, so a
// crash leaves the old file or the new one; losing it only costs a baseline).
func (a *Agent) saveCounters(dir string) {
	a.mu.Lock()
	b, err := json.Marshal(a.coll.State())
	a.mu.Unlock()
	if err != nil {
		return
	}
	tmp := filepath.Join(dir, countersFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		a.logger.Warn("saving counters failed; the next run takes a baseline", "err", err)
		return
	}
	if err := os.Rename(tmp, filepath.Join(dir, countersFile)); err != nil {
		a.logger.Warn("saving counters failed; the next run takes a baseline", "err", err)
	}
}
