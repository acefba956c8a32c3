package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Default ingest limits. A batch of 1000 samples with detail is well under
// 1 MiB gzipped; the decoded limit bounds gzip bombs.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxDecodedBytes = 8 << 20
	// DefaultDecodeBudget bounds the decompressed bytes of all batches
	// being decoded and stored at once. A batch costs the process a few
	// times its decompressed size until it is stored (decoded samples,
	// then the store's commands), so 24 MiB keeps a process under a
	// 256 MiB limit however many hosts send at once (docs/PERFORMANCE.md,
	// "Ingest memory per request"). Ordinary batches (up to
	// smallBatchBytes) never wait behind heavy ones and have a sixth of it
	// to themselves; a server has one heavy batch in flight at most (see
	// budget), so no host can stall another's ingest.
	DefaultDecodeBudget = 24 << 20
	// DefaultBudgetWait is how long a batch waits for the budget before
	// it is answered 503 + Retry-After (the reporter retries): well
	// inside the 3 s every answer is bounded by.
	DefaultBudgetWait = 2 * time.Second
)

// IngestDeps are what the ingest handler needs.
type IngestDeps struct {
	Store  metric.Store
	Keys   metric.HostKeys
	Logger *slog.Logger
	// Now is the receiver clock for signature skew and sample validation.
	Now func() time.Time
	// MaxBodyBytes bounds the body as sent; MaxDecodedBytes bounds it after
	// gunzip. 0 means the defaults.
	MaxBodyBytes, MaxDecodedBytes int64
	// DecodeBudget bounds the decompressed bytes of the batches this
	// handler decodes and stores at once; a batch that finds it spent
	// waits up to BudgetWait, then gets 503 + Retry-After. Only signed
	// batches of enrolled hosts take from it. 0 means the defaults.
	DecodeBudget int64
	BudgetWait   time.Duration
}

type ingest struct {
	IngestDeps
	budget *budget
}

// NewIngest returns the ingest function's handler: POST /api/ingest with a
// signed (and optionally gzipped) batch, answered 202 with the counts of
// accepted, duplicate and stale samples. Every check (headers, size,
// signature, decoding, validation) finishes before anything is written.
func NewIngest(d IngestDeps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if d.MaxDecodedBytes <= 0 {
		d.MaxDecodedBytes = DefaultMaxDecodedBytes
	}
	if d.DecodeBudget <= 0 {
		d.DecodeBudget = DefaultDecodeBudget
	}
	if d.BudgetWait <= 0 {
		d.BudgetWait = DefaultBudgetWait
	}
	// A sixth of the budget (4 MiB by default: 16 small batches at their
	// largest) is kept for small batches, so heavy ones never hold up the
	// ordinary traffic of every other host.
	h := &ingest{IngestDeps: d, budget: newBudget(d.DecodeBudget, smallBatchBytes, d.DecodeBudget/6)}
	return newMux(FunctionIngest, map[string]http.HandlerFunc{
		"POST /api/ingest": h.serve,
	}, d.Logger)
}

// notEnrolledKey is what requests from unknown hosts are verified against:
// random per process, never stored or shown.
var notEnrolledKey = func() (k [32]byte) {
	_, _ = rand.Read(k[:])
	return k
}()

func (h *ingest) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	serverID := r.Header.Get(auth.HeaderServer)
	res, err := h.handle(r, serverID)
	if err != nil {
		if isTransit(err) {
			// Every batch of this host (likely of every host behind the
			// same gateway) fails the same way until someone acts: loud.
			h.Logger.Error("ingest body changed in transit; nothing stored, reporters keep retrying until the path to ingest is fixed",
				"server", safeID(serverID), "content_type", metric.Bounded(r.Header.Get("Content-Type")),
				"content_encoding", metric.Bounded(r.Header.Get("Content-Encoding")), "err", err)
		} else if errors.Is(err, metric.ErrUnauthorized) || errors.Is(err, metric.ErrInvalid) || errors.Is(err, metric.ErrTooLarge) {
			// Client mistakes are worth a line for the operator (a host
			// with a wrong key or clock), but not at error level.
			h.Logger.Info("ingest rejected", "server", safeID(serverID), "err", err)
		}
		WriteError(w, r, h.Logger, err)
		return
	}
	h.Logger.Debug("ingest", "server", serverID, "accepted", res.Accepted, "duplicates", res.Duplicates, "stale", res.Stale, "duration", time.Since(start))
	WriteJSON(w, http.StatusAccepted, res)
}

func (h *ingest) handle(r *http.Request, serverID string) (metric.IngestResult, error) {
	if serverID == "" {
		return metric.IngestResult{}, metric.Errorf(metric.ErrInvalid, "%s header is required", auth.HeaderServer)
	}
	if err := metric.CheckServerID(serverID); err != nil {
		return metric.IngestResult{}, err
	}
	ts, sig := r.Header.Get(auth.HeaderTimestamp), r.Header.Get(auth.HeaderSignature)
	if ts == "" || sig == "" {
		return metric.IngestResult{}, metric.Errorf(metric.ErrUnauthorized, "%s and %s headers are required", auth.HeaderTimestamp, auth.HeaderSignature)
	}
	gzipped, err := bodyEncoding(r.Header)
	if err != nil {
		return metric.IngestResult{}, err
	}
	if r.ContentLength > h.MaxBodyBytes {
		return metric.IngestResult{}, metric.Errorf(metric.ErrTooLarge, "body: %d bytes, the limit is %d", r.ContentLength, h.MaxBodyBytes)
	}
	raw, err := readLimited(r.Body, h.MaxBodyBytes, "body")
	if err != nil {
		return metric.IngestResult{}, err
	}

	// An unknown or revoked host is checked against a key nobody holds,
	// so it gets exactly the answer (and the timing) of a wrong signature:
	// the 401 must not tell a prober which host names are enrolled. The
	// log line, for the operator, says which it was.
	key, err := h.Keys.HostKey(r.Context(), serverID)
	enrolled := err == nil
	if errors.Is(err, metric.ErrNotFound) {
		key = notEnrolledKey[:]
	} else if err != nil {
		return metric.IngestResult{}, err
	}
	now := h.Now()
	body, gzipped, err := verifyBody(key, ts, serverID, raw, sig, gzipped, now)
	if err != nil {
		if !enrolled && !isTransit(err) {
			return metric.IngestResult{}, fmt.Errorf("host not enrolled or revoked: %w", err)
		}
		return metric.IngestResult{}, err
	}
	if !enrolled {
		// Only reachable by forging an HMAC with a key that exists in no
		// host's hands; refuse all the same.
		return metric.IngestResult{}, metric.Errorf(metric.ErrUnauthorized, auth.SignatureMismatch)
	}

	// The body is authentic; what it costs to decode is bounded before
	// any of it is decompressed (see budget).
	weight := int64(len(body))
	if gzipped {
		weight = gzipISize(body)
	}
	weight = min(max(weight, int64(len(body))), h.MaxDecodedBytes)
	g, err := h.budget.acquire(r.Context(), serverID, weight, h.BudgetWait)
	if err != nil {
		return metric.IngestResult{}, err
	}
	defer g.release() // with what the decoder took on top

	var in io.Reader = bytes.NewReader(body)
	if gzipped {
		zr, err := gzip.NewReader(in)
		if err != nil {
			return metric.IngestResult{}, metric.Errorf(metric.ErrInvalid, "body: not valid gzip")
		}
		in = zr
	}
	lr := &limitedReader{r: in, limit: h.MaxDecodedBytes, left: h.MaxDecodedBytes, reserved: weight, grant: g}
	batch, err := metric.DecodeBatchFrom(lr, serverID, now)
	switch {
	case lr.err != nil:
		// The decompressed stream failed or ran over a limit: the JSON
		// decoder's view of it (truncated JSON) would mislead.
		return metric.IngestResult{}, lr.err
	case err != nil:
		return metric.IngestResult{}, err
	}
	res, err := h.store(r.Context(), serverID, batch.Samples)
	if ir, ok := h.Store.(intervalRecorder); ok && err == nil && batch.Interval > 0 {
		// After the samples: a failure is a 503 and the re-sent batch
		// stores nothing twice.
		err = ir.RecordInterval(r.Context(), serverID, batch.Interval)
	}
	return res, err
}

// intervalRecorder keeps the reporting interval a host announces, which
// the alert evaluator's no-data deadline is measured beyond;
// redisstore.Store implements it.
type intervalRecorder interface {
	RecordInterval(ctx context.Context, serverID string, d time.Duration) error
}

// storeChunkReadings is how many readings (a sample and each of its
// instances count one) go to the store in one call. The store's work and
// memory for a call grow with its readings (about 1.3 KiB each while the
// call runs); a maximal batch (1,000 samples × 38 instances, 39,000
// readings) stored in one call cost the process 50 MiB, in chunks of
// 4,096 a tenth of that.
const storeChunkReadings = 4096

// store hands a validated batch to the store in chunks of about
// storeChunkReadings readings and adds up the counts. Samples are stored
// idempotently, so when a later chunk fails (Redis away) the reporter's
// retry of the whole batch finds the earlier chunks as duplicates.
func (h *ingest) store(ctx context.Context, serverID string, samples []metric.Sample) (metric.IngestResult, error) {
	// The store orders samples only within a call; chunks must follow
	// each other in time too, or a later chunk's older samples would
	// replace a newer one dated ahead as the latest (see the store's
	// rule for latest). Stable: equal instants keep body order.
	slices.SortStableFunc(samples, func(a, b metric.Sample) int { return a.CollectedAt.Compare(b.CollectedAt) })
	var total metric.IngestResult
	for len(samples) > 0 {
		n, readings := 0, 0
		for n < len(samples) && (n == 0 || readings+1+len(samples[n].Instances) <= storeChunkReadings) {
			readings += 1 + len(samples[n].Instances)
			n++
		}
		res, err := h.Store.Ingest(ctx, serverID, samples[:n])
		if err != nil {
			return metric.IngestResult{}, err
		}
		total.AddChunk(res)
		samples = samples[n:]
	}
	return total, nil
}

// bodyEncoding says whether the body is gzip: Content-Type
// application/gzip (what the reporter sends: API Gateway and proxies pass
// such a body as binary and never decompress it) or Content-Encoding gzip
// (older reporters, curl). Any other encoding is a 415.
func bodyEncoding(h http.Header) (gzipped bool, err error) {
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	gzipType := ct == "application/gzip" || ct == "application/x-gzip"
	switch v := h.Get("Content-Encoding"); strings.ToLower(strings.TrimSpace(v)) {
	case "", "identity":
		return gzipType, nil
	case "gzip", "x-gzip":
		// application/gzip with Content-Encoding gzip is read as one gzip
		// layer: a proxy that added the header for a gzip file changed
		// nothing in the bytes, which the signature covers anyway.
		return true, nil
	default:
		return false, &statusError{status: http.StatusUnsupportedMediaType, msg: "Content-Encoding " + metric.Bounded(v) + " not supported; send gzip or no encoding"}
	}
}

// gzipMagic starts every gzip stream; gzipBase64 is how those bytes start
// once base64-encoded.
var (
	gzipMagic  = []byte{0x1f, 0x8b}
	gzipBase64 = []byte("H4sI")
)

// verifyBody checks the signature over raw and returns the body to decode
// and whether it is gzip. When the signature fails on a body declared gzip
// it tells the ways a proxy or API Gateway mangles one apart from a wrong
// key:
//
//   - still base64 (a gateway that did not decode its isBase64Encoded
//     body): decoded and verified again; accepted if it verifies, a wrong
//     key (the original error) if it is intact gzip that does not.
//   - not gzip at all (decompressed in transit): accepted if the signature
//     verifies over it as it is, otherwise changed in transit.
//   - gzip bytes that are now valid UTF-8 (delivered as text: every byte
//     over 0x7f became U+FFFD), or JSON text: changed in transit.
//
// Real gzip data is never valid UTF-8 (its second byte, 0x8b, cannot
// start a character), so that test does not misfire on an honest body
// with a wrong key. The diagnosis
// depends on the body only, never on the key, so an unknown host and a
// wrong key still get the same answer for the same body.
func verifyBody(key []byte, ts, serverID string, raw []byte, sig string, gzipped bool, now time.Time) ([]byte, bool, error) {
	err := auth.VerifyRequest(key, ts, serverID, raw, sig, now)
	if err == nil {
		if gzipped && !bytes.HasPrefix(raw, gzipMagic) && looksJSON(raw) {
			// Declared gzip, arrived as JSON, and signed as JSON: a
			// gateway decompressed a body its host signed uncompressed.
			return raw, false, nil
		}
		return raw, gzipped, nil
	}
	var me *metric.Error
	if !gzipped || !errors.As(err, &me) || me.Msg != auth.SignatureMismatch {
		return nil, false, err
	}
	if bytes.HasPrefix(raw, gzipBase64) {
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(raw)))
		if n, derr := base64.StdEncoding.Decode(dec, bytes.TrimSpace(raw)); derr == nil {
			if auth.VerifyRequest(key, ts, serverID, dec[:n], sig, now) == nil {
				return dec[:n], true, nil
			}
			if _, gerr := gzip.NewReader(bytes.NewReader(dec[:n])); gerr == nil {
				// Intact gzip under the base64, and the signature still
				// fails: the key is wrong, not the transport (a 502 would
				// have the reporter retry it as a transport fault).
				return nil, false, err
			}
			return nil, false, transitError("it arrived base64-encoded: a proxy or API Gateway passed on its base64 form without decoding it")
		}
	}
	if !bytes.HasPrefix(raw, gzipMagic) {
		// A gateway that decompressed the body: the signature covers the
		// compressed bytes, so it verifies only if the host signed these.
		if looksJSON(raw) {
			return nil, false, transitError("it was sent as gzip and arrived as plain JSON: a proxy or API Gateway decompressed it")
		}
		if utf8.Valid(raw) && len(raw) > 0 {
			// gzip's second byte (0x8b) alone is invalid UTF-8: a body
			// declared gzip that is valid text was rewritten as text.
			return nil, false, transitError("it was sent as gzip and arrived as text (binary bytes replaced by U+FFFD): a proxy or API Gateway passed the binary body on as text")
		}
	}
	return nil, false, err
}

func transitError(why string) error {
	return &statusError{
		status: http.StatusBadGateway,
		msg: "body changed in transit, so it cannot be what the host signed: " + why +
			"; nothing was stored and the reporter keeps the batch. Send the body as Content-Type: application/gzip " +
			"(see the README, \"Ingest wire format\"), or route ingest around the component that rewrites it",
	}
}

// isTransit reports whether err is a transitError.
func isTransit(err error) bool {
	var se *statusError
	return errors.As(err, &se) && se.status == http.StatusBadGateway
}

// looksJSON: a body whose first non-space byte opens a JSON object.
func looksJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// gzipISize is the uncompressed size a gzip stream declares in its last
// four bytes (ISIZE, RFC 1952), used only to reserve memory before
// decompressing; gzip.Reader checks it against the real output.
func gzipISize(b []byte) int64 {
	if len(b) < 18 || !bytes.HasPrefix(b, gzipMagic) {
		return int64(len(b))
	}
	return int64(binary.LittleEndian.Uint32(b[len(b)-4:]))
}

// limitedReader is the decompressed body: it fails with ErrTooLarge past
// left bytes, and past the bytes reserved for it in the budget it reserves
// more without waiting (a stream whose trailer understated its size, or
// with several gzip members), failing with 503 if the budget is spent.
// Read errors of the stream itself (bad gzip) become a 400.
type limitedReader struct {
	r              io.Reader
	limit, left    int64
	read, reserved int64
	grant          *grant
	extra          int64
	err            error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if int64(n) > l.left {
		l.err = metric.Errorf(metric.ErrTooLarge, "decompressed body: over the limit of %d bytes", l.limit)
		return 0, l.err
	}
	l.left -= int64(n)
	if over := l.read - l.reserved - l.extra; over > 0 {
		more := max(over, 256<<10)
		if !l.grant.more(more) {
			l.err = metric.Errorf(metric.ErrUnavailable, "ingest is busy decoding other large batches; retry later")
			return 0, l.err
		}
		l.extra += more
	}
	if err != nil && err != io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
		var me *metric.Error
		if !errors.As(err, &me) {
			err = metric.Errorf(metric.ErrInvalid, "body: not valid gzip")
		}
		l.err = err
	}
	return n, err
}

// readLimited reads all of r, failing with ErrTooLarge past limit bytes
// and with 408 when the read fails otherwise.
func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, metric.Errorf(metric.ErrTooLarge, "%s: over the limit of %d bytes", what, limit)
		}
		// The body stopped arriving (the server's read deadline, a reset
		// connection): nothing is wrong with the data, so the sender must
		// retry it, not drop it as a 400.
		return nil, &statusError{status: http.StatusRequestTimeout, msg: what + ": could not be read in full (read timeout or connection lost); nothing was stored, send it again"}
	}
	if int64(len(b)) > limit {
		return nil, metric.Errorf(metric.ErrTooLarge, "%s: over the limit of %d bytes", what, limit)
	}
	return b, nil
}

// safeID keeps log lines bounded and printable when the header is junk.
func safeID(id string) string {
	if metric.ValidServerID(id) {
		return id
	}
	if len(id) > 64 {
		id = id[:64]
	}
	return strings.ToValidUTF8(id, "?")
}

// smallBatchBytes is the decoded size up to which a batch is small: a
// reporter's ordinary batch (one sample, or a few minutes of spool) is a
// few KiB to a few hundred. Small batches never queue behind heavy ones.
const smallBatchBytes = 256 << 10

// budget is a weighted semaphore over decompressed bytes with two lanes,
// so that no host can stall another's ingest through it:
//
//   - heavy requests (over small bytes) may hold at most size-reserve
//     between them, wait first come first served (a large batch waiting
//     is not overtaken by later large ones forever), and a server has at
//     most one heavy request holding or waiting: its second gets 503 at
//     once. A request larger than the heavy lane takes all of it.
//   - small requests take from the whole budget, including the reserve
//     heavy ones cannot touch, and never wait behind a heavy one; they
//     wait (first come first served among themselves) only when small
//     ones fill the reserve and the rest is spent.
type budget struct {
	size, small, reserve int64

	mu           sync.Mutex
	used         int64 // by both lanes
	heavyUsed    int64
	smallWaiters []*budgetWaiter
	heavyWaiters []*budgetWaiter
	heavyServers map[string]struct{} // servers with a heavy request holding or waiting
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

// newBudget returns a budget of size bytes whose requests up to small
// bytes are small, with reserve bytes that only small ones may use.
func newBudget(size, small, reserve int64) *budget {
	reserve = min(reserve, size-1)
	return &budget{size: size, small: small, reserve: max(reserve, 0), heavyServers: map[string]struct{}{}}
}

// grant is what acquire hands out: n bytes in one lane, plus what the
// decoder takes on top (more), given back by release.
type grant struct {
	b      *budget
	heavy  bool
	server string
	n      int64
}

// acquire takes n bytes of the budget for server, waiting at most wait (or
// until ctx ends). When the wait runs out, or server already has a heavy
// request in flight, the error is ErrUnavailable (503 + Retry-After).
func (b *budget) acquire(ctx context.Context, server string, n int64, wait time.Duration) (*grant, error) {
	heavy := n > b.small
	if heavy {
		n = min(n, b.size-b.reserve)
	}
	g := &grant{b: b, heavy: heavy, server: server, n: n}
	b.mu.Lock()
	if heavy {
		if _, busy := b.heavyServers[server]; busy {
			b.mu.Unlock()
			return nil, metric.Errorf(metric.ErrUnavailable, "ingest is still decoding another large batch of this server; retry later")
		}
		b.heavyServers[server] = struct{}{}
	}
	queue := &b.smallWaiters
	if heavy {
		queue = &b.heavyWaiters
	}
	if len(*queue) == 0 && b.fitsLocked(heavy, n) {
		b.takeLocked(heavy, n)
		b.mu.Unlock()
		return g, nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	*queue = append(*queue, w)
	b.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return g, nil
	case <-ctx.Done():
	case <-t.C:
	}
	b.mu.Lock()
	select {
	case <-w.ready:
		// Granted while giving up: give it back.
		b.mu.Unlock()
		g.release()
	default:
		for i, x := range *queue {
			if x == w {
				*queue = append((*queue)[:i], (*queue)[i+1:]...)
				break
			}
		}
		if heavy {
			delete(b.heavyServers, server)
		}
		b.grantLocked() // the head may have changed
		b.mu.Unlock()
	}
	return nil, metric.Errorf(metric.ErrUnavailable, "ingest is busy decoding other large batches; retry later")
}

func (b *budget) fitsLocked(heavy bool, n int64) bool {
	if heavy {
		return b.heavyUsed+n <= b.size-b.reserve && b.used+n <= b.size
	}
	return b.used+n <= b.size
}

func (b *budget) takeLocked(heavy bool, n int64) {
	b.used += n
	if heavy {
		b.heavyUsed += n
	}
}

// more takes n bytes more for g only if they are free now and nobody of
// its lane waits. A small request that outgrows what it declared does not
// take the reserve kept for the others.
func (g *grant) more(n int64) bool {
	b := g.b
	b.mu.Lock()
	defer b.mu.Unlock()
	queue := b.smallWaiters
	if g.heavy {
		queue = b.heavyWaiters
	}
	fits := b.fitsLocked(g.heavy, n)
	if !g.heavy {
		fits = b.used+n <= b.size-b.reserve
	}
	if len(queue) == 0 && fits {
		b.takeLocked(g.heavy, n)
		g.n += n
		return true
	}
	return false
}

// release gives back everything g holds.
func (g *grant) release() {
	b := g.b
	b.mu.Lock()
	b.used -= g.n
	if g.heavy {
		b.heavyUsed -= g.n
		delete(b.heavyServers, g.server)
	}
	g.n = 0
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked wakes waiters that now fit: small ones first, so a heavy
// waiter never holds up a small one.
func (b *budget) grantLocked() {
	for _, heavy := range []bool{false, true} {
		queue := &b.smallWaiters
		if heavy {
			queue = &b.heavyWaiters
		}
		for len(*queue) > 0 {
			w := (*queue)[0]
			if !b.fitsLocked(heavy, w.n) {
				break
			}
			b.takeLocked(heavy, w.n)
			*queue = (*queue)[1:]
			close(w.ready)
		}
	}
}
