package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Default ingest limits. A batch of 1000 samples with detail is well under
// 1 MiB gzipped; the decoded limit bounds gzip bombs.
const (
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxDecodedBytes = 8 << 20
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
}

type ingest struct {
	IngestDeps
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
	h := &ingest{d}
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
		if errors.Is(err, metric.ErrUnauthorized) || errors.Is(err, metric.ErrInvalid) || errors.Is(err, metric.ErrTooLarge) {
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
	gzipped, err := contentEncoding(r.Header.Get("Content-Encoding"))
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
	if err := auth.VerifyRequest(key, ts, serverID, raw, sig, now); err != nil {
		if !enrolled {
			return metric.IngestResult{}, fmt.Errorf("host not enrolled or revoked: %w", err)
		}
		return metric.IngestResult{}, err
	}
	if !enrolled {
		// Only reachable by forging an HMAC with a key that exists in no
		// host's hands; refuse all the same.
		return metric.IngestResult{}, metric.Errorf(metric.ErrUnauthorized, auth.SignatureMismatch)
	}

	body := raw
	if gzipped {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return metric.IngestResult{}, metric.Errorf(metric.ErrInvalid, "body: not valid gzip")
		}
		body, err = readLimited(zr, h.MaxDecodedBytes, "decompressed body")
		if err != nil {
			if errors.Is(err, metric.ErrTooLarge) {
				return metric.IngestResult{}, err
			}
			return metric.IngestResult{}, metric.Errorf(metric.ErrInvalid, "body: not valid gzip")
		}
	}
	batch, err := metric.DecodeBatch(body, serverID, now)
	if err != nil {
		return metric.IngestResult{}, err
	}
	res, err := h.Store.Ingest(r.Context(), serverID, batch.Samples)
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

// contentEncoding accepts identity and gzip, nothing else (415).
func contentEncoding(v string) (gzipped bool, err error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	}
	return false, &statusError{status: http.StatusUnsupportedMediaType, msg: "Content-Encoding " + v + " not supported; send gzip or no encoding"}
}

// readLimited reads all of r, failing with ErrTooLarge past limit bytes.
func readLimited(r io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, metric.Errorf(metric.ErrTooLarge, "%s: over the limit of %d bytes", what, limit)
		}
		return nil, metric.Errorf(metric.ErrInvalid, "%s: %s could not be read", what, what)
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
