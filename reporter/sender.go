package reporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// outcome classifies one delivery attempt.
type outcome int

const (
	delivered outcome = iota
	// retryable: anything that is not a verdict on the batch's data: the
	// network, the server or a gateway failed (5xx, 408, 429, connection
	// errors, timeouts), or the setup is wrong (404/405 for a bad URL,
	// 409, 415, an unknown status); the same batch is sent again later.
	retryable
	// unauthorized: 401/403, the server does not accept this host's
	// credentials (a rotated or revoked key, a Redis that lost its data, a
	// wrong server id, a skewed clock). Nothing is wrong with the batch,
	// and nothing will change until someone acts, so it stays spooled and
	// the reporter backs off long.
	unauthorized
	// permanent: 400, the server refused the batch itself as invalid data;
	// sending it again cannot help, so it is dropped and counted.
	permanent
	// tooLarge: 413; the batch is split and sent in halves (a single
	// sample refused as too large is dropped like a 400).
	tooLarge
)

// sender posts batches of encoded samples to the ingest endpoint.
type sender struct {
	url       string
	serverID  string
	key       []byte
	client    *http.Client
	timeout   time.Duration
	userAgent string
	now       func() time.Time
	gzip      gzipper
}

// attempt is what one POST produced.
type attempt struct {
	outcome    outcome
	status     int
	retryAfter time.Duration // from a Retry-After header, 0 if none
	result     metric.IngestResult
	err        error // why it failed; safe to log (the server's message)
}

// encodeBatch builds the request body around already-encoded samples:
// they are spooled as JSON, so no re-encoding happens on the way out.
// interval (whole seconds, omitted when under 1 s) tells ingest how often
// this host reports, for the alert evaluator's no-data deadline.
func encodeBatch(serverID string, interval time.Duration, samples [][]byte) []byte {
	var b bytes.Buffer
	id, _ := json.Marshal(serverID)
	b.WriteString(`{"serverId":`)
	b.Write(id)
	if s := int64(interval / time.Second); s >= 1 {
		b.WriteString(`,"interval":` + strconv.FormatInt(s, 10))
	}
	b.WriteString(`,"samples":[`)
	for i, s := range samples {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(s)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// gzipper compresses request bodies with one reused gzip.Writer: a new
// writer allocates ~700 KiB of deflate state, which at one batch a second
// was most of the reporter's garbage and a good part of its RSS.
type gzipper struct {
	mu sync.Mutex
	zw *gzip.Writer
}

func (g *gzipper) compress(p []byte) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b bytes.Buffer
	b.Grow(len(p)/4 + 64)
	if g.zw == nil {
		g.zw, _ = gzip.NewWriterLevel(&b, gzip.BestSpeed)
	} else {
		g.zw.Reset(&b)
	}
	_, _ = g.zw.Write(p) // writes to a bytes.Buffer cannot fail
	_ = g.zw.Close()     // likewise: it only flushes into the buffer
	return b.Bytes()
}

// post sends one batch, compressed and signed. The signature covers the
// compressed bytes exactly as sent and is made fresh per attempt, so a retry
// an hour later still passes the server's 5-minute clock check.
func (s *sender) post(ctx context.Context, body []byte) attempt {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ts := s.now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		// Not the batch's fault (New checks the URL, so this is not
		// expected): keep it.
		return attempt{outcome: retryable, err: err}
	}
	// application/gzip, not application/json: API Gateway HTTP APIs (and
	// proxies) pass a body of a non-text type on as binary (base64 to
	// Lambda), where a JSON type gets the gzip bytes delivered as text,
	// mangled. Content-Encoding stays for servers older than the type.
	req.Header.Set("Content-Type", "application/gzip")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", s.userAgent)
	req.Header.Set(auth.HeaderServer, s.serverID)
	req.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(auth.HeaderSignature, auth.Sign(s.key, ts, s.serverID, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return attempt{outcome: retryable, err: fmt.Errorf("post %s: %w", s.url, unwrapURLError(err))}
	}
	defer resp.Body.Close() //nolint:errcheck // read-only body, already drained; nothing to lose
	// Read (a bounded amount of) the body so the connection is reused.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	a := attempt{status: resp.StatusCode, outcome: classify(resp.StatusCode)}
	if a.outcome == delivered {
		_ = json.Unmarshal(msg, &a.result) // counts are informational
		return a
	}
	a.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	a.err = fmt.Errorf("ingest answered %s: %s", resp.Status, serverMessage(msg))
	return a
}

// classify maps a status to what to do with the batch. Only 400 (and 413
// for a single sample) lets the batch go: every other answer, known or not,
// says nothing against the data, so the batch is kept and sent again.
func classify(status int) outcome {
	switch {
	case status >= 200 && status < 300:
		return delivered
	case status == http.StatusBadRequest:
		return permanent
	case status == http.StatusRequestEntityTooLarge:
		return tooLarge
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return unauthorized
	}
	// 1xx/3xx (a proxy or misconfigured URL), other 4xx, 5xx: keep the
	// batch so nothing is lost while someone fixes it.
	return retryable
}

// refusalHint says what an operator should check for a refusal that is
// about this reporter's setup rather than the batch: every sample after it
// would be refused the same way until someone acts.
func refusalHint(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "samples stay spooled and go out once the key works: check that VITALS_SERVER_ID and VITALS_HOST_KEY are the lines 'vitalsctl host add' printed " +
			"(a rotation or revoke replaces them; 'vitalsctl host list' shows enrolled ids; if the host is missing, e.g. Redis lost its data, " +
			"re-enrol it with 'vitalsctl host add' and install the new env file) and that this host's clock is synced (NTP)"
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return "check VITALS_INGEST_URL: it must be the ingest endpoint, ending in /api/ingest"
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return "the server refused these samples; the reporter and server versions may disagree"
	case http.StatusUnsupportedMediaType:
		return "the server or a gateway refused the request's encoding; the reporter and server versions may disagree"
	}
	return "see the server's message"
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). Unparseable or past values mean "no hint".
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, maxRetryAfter)
		}
	}
	return 0
}

// maxRetryAfter caps a server's Retry-After: a typo'd or hostile header must
// not park the reporter for days while its spool fills.
const maxRetryAfter = 15 * time.Minute

// backoff is the wait before retry number n (0-based): exponential from lo,
// capped at hi, with "equal jitter" (half fixed, half random) so a fleet of
// reporters cut off together does not come back in lockstep, yet no wait
// collapses to zero.
func backoff(n int, lo, hi time.Duration, rnd func() float64) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}

// retryWait is the pause after a failed attempt: the server's Retry-After
// when it gave one, else the jittered backoff.
func retryWait(a attempt, n int, lo, hi time.Duration) time.Duration {
	if a.retryAfter > 0 {
		return a.retryAfter
	}
	return backoff(n, lo, hi, rand.Float64)
}

// serverMessage extracts {"error": "..."} from an answer, else a short
// excerpt of the raw text.
func serverMessage(b []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(no message)"
	}
	return s
}

// unwrapURLError drops *url.Error's "Post \"URL\":" prefix, which repeats
// what the caller already says.
func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
