package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestIngestAcceptsAndIsIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := gz(t, batch(t, 5, nil))
	req := func() *http.Request { return signed(e.server, e.key, body, true) }

	first := do(t, e.ingest, req())
	first.want(t, http.StatusAccepted, "")
	if first.Body["accepted"] != 5.0 || first.Body["duplicates"] != 0.0 || first.Body["stale"] != 0.0 {
		t.Fatalf("first post: %s", first.Raw)
	}
	// The same signed request again (a retry, or a replay within the
	// skew window) stores nothing twice.
	second := do(t, e.ingest, req())
	second.want(t, http.StatusAccepted, "")
	if second.Body["accepted"] != 0.0 || second.Body["duplicates"] != 5.0 {
		t.Fatalf("re-sent batch: %s, want all duplicates", second.Raw)
	}
	res := do(t, e.query, get("/api/servers/web-1/metrics?period=1h", token(t, "web-1")))
	res.want(t, http.StatusOK, "")
	if res.Body["count"] != 5.0 {
		t.Fatalf("stored points after two posts: %s", res.Raw)
	}
}

func TestIngestPlainJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := do(t, e.ingest, signed(e.server, e.key, batch(t, 1, nil), false))
	res.want(t, http.StatusAccepted, "")
	if res.Body["accepted"] != 1.0 {
		t.Fatal(res.Raw)
	}
}

func TestIngestRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other, err := e.store.AddHost(context.Background(), "revoked-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeHost(context.Background(), "revoked-1"); err != nil {
		t.Fatal(err)
	}
	good := batch(t, 2, nil)
	hdr := func(k, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(k, v) } }
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		msg    string
	}{
		{"no server header", func() *http.Request {
			r := signed(e.server, e.key, good, false)
			r.Header.Del(auth.HeaderServer)
			return r
		}, 400, "X-Vitals-Server"},
		{"bad server id", func() *http.Request { return signed("web 1/../x", e.key, good, false) }, 400, "server id"},
		{"no signature", func() *http.Request {
			r := signed(e.server, e.key, good, false)
			r.Header.Del(auth.HeaderSignature)
			return r
		}, 401, "X-Vitals-Signature"},
		{"no timestamp", func() *http.Request {
			r := signed(e.server, e.key, good, false)
			r.Header.Del(auth.HeaderTimestamp)
			return r
		}, 401, "X-Vitals-Timestamp"},
		{"wrong key", func() *http.Request { return signed(e.server, []byte("not-the-key"), good, false) }, 401, auth.SignatureMismatch},
		// Unknown and revoked hosts get the wrong key's answer, word for
		// word, so a 401 never tells which host names are enrolled.
		{"unknown host", func() *http.Request { return signed("ghost-1", e.key, good, false) }, 401, auth.SignatureMismatch},
		{"revoked host", func() *http.Request { return signed("revoked-1", other, good, false) }, 401, auth.SignatureMismatch},
		{"unknown host, stale timestamp", func() *http.Request {
			ts := time.Now().Add(-10 * time.Minute).Unix()
			r := signed("ghost-1", e.key, good, false)
			r.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
			r.Header.Set(auth.HeaderSignature, auth.Sign(e.key, ts, "ghost-1", good))
			return r
		}, 401, "off the server clock"},
		{"body changed after signing", func() *http.Request {
			r := signed(e.server, e.key, good, false)
			tampered := bytes.Replace(good, []byte("12.5"), []byte("99.5"), 1)
			r.Body = http.NoBody
			r2 := httptest.NewRequest(http.MethodPost, "/api/ingest", bytes.NewReader(tampered))
			r2.Header = r.Header
			return r2
		}, 401, "signature"},
		{"stale timestamp", func() *http.Request {
			r := signed(e.server, e.key, good, false)
			ts := time.Now().Add(-10 * time.Minute).Unix()
			r.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(ts, 10))
			r.Header.Set(auth.HeaderSignature, auth.Sign(e.key, ts, e.server, good))
			return r
		}, 401, "off the server clock"},
		{"signature over the uncompressed body", func() *http.Request {
			r := signed(e.server, e.key, good, false)
			z := gz(t, good)
			r2 := httptest.NewRequest(http.MethodPost, "/api/ingest", bytes.NewReader(z))
			r2.Header = r.Header.Clone()
			r2.Header.Set("Content-Encoding", "gzip")
			return r2
		}, 401, "signature"},
		{"unsupported encoding", func() *http.Request {
			r := signed(e.server, e.key, good, false)
			hdr("Content-Encoding", "br")(r)
			return r
		}, 415, "Content-Encoding"},
		{"not gzip", func() *http.Request { return signed(e.server, e.key, []byte("hello, not gzip"), true) }, 400, "gzip"},
		{"invalid sample", func() *http.Request {
			return signed(e.server, e.key, batch(t, 2, func(i int, s map[string]any) {
				if i == 1 {
					s["cpuUsagePercent"] = 140
				}
			}), false)
		}, 400, "samples[1].cpuUsagePercent"},
		{"missing field", func() *http.Request {
			return signed(e.server, e.key, batch(t, 1, func(_ int, s map[string]any) { delete(s, "ramTotalBytes") }), false)
		}, 400, "ramTotalBytes"},
		{"far future sample", func() *http.Request {
			return signed(e.server, e.key, batch(t, 1, func(_ int, s map[string]any) {
				s["collectedAt"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			}), false)
		}, 400, "future"},
		{"serverId mismatch", func() *http.Request {
			return signed(e.server, e.key, []byte(`{"serverId":"db-9","samples":[]}`), false)
		}, 400, "serverId"},
		{"not JSON", func() *http.Request { return signed(e.server, e.key, []byte("hello"), false) }, 400, ""},
		{"body over the limit", func() *http.Request {
			return signed(e.server, e.key, bytes.Repeat([]byte(" "), httpapi.DefaultMaxBodyBytes+1), false)
		}, 413, "limit"},
		{"body over the limit without Content-Length", func() *http.Request {
			body := bytes.Repeat([]byte(" "), httpapi.DefaultMaxBodyBytes+1)
			r := signed(e.server, e.key, body, false)
			r.ContentLength = -1
			return r
		}, 413, "limit"},
		{"gzip bomb", func() *http.Request {
			big := append([]byte(`{"samples":[`), bytes.Repeat([]byte(" "), httpapi.DefaultMaxDecodedBytes)...)
			return signed(e.server, e.key, gz(t, big), true)
		}, 413, "decompressed body"},
		{"GET", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/api/ingest", nil) }, 405, "POST"},
		{"unknown route", func() *http.Request { return httptest.NewRequest(http.MethodPost, "/api/ingestx", nil) }, 404, "no such route"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := do(t, e.ingest, tc.req())
			res.want(t, tc.status, tc.msg)
			if tc.status == 405 && res.Header.Get("Allow") != "POST" {
				t.Errorf("Allow %q", res.Header.Get("Allow"))
			}
		})
	}
	// Nothing above may have stored anything.
	res := do(t, e.query, get("/api/servers/web-1/metrics", token(t, "*")))
	res.want(t, http.StatusNotFound, "")
	if strings.Contains(e.logs.String(), string(e.key)) {
		t.Fatal("a host key reached the logs")
	}
	// The operator's log says what the client is not told.
	if !strings.Contains(e.logs.String(), "host not enrolled or revoked") {
		t.Errorf("no log line names the unknown host's reason:\n%s", e.logs.String())
	}
}

func TestIngestConfiguredLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := httpapi.NewIngest(httpapi.IngestDeps{Store: e.store, Keys: e.store, MaxBodyBytes: 100})
	res := do(t, h, signed(e.server, e.key, batch(t, 1, nil), false))
	res.want(t, http.StatusRequestEntityTooLarge, "100")
}

// TestIngestRedisDown: a stopped Redis is a 503 with Retry-After, whether it
// fails on the key lookup or on the write, and the reporter's retry after a
// restart lands.
func TestIngestRedisDown(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t)
	e := newEnvURL(t, srv.URL, "down:")
	body := gz(t, batch(t, 3, nil))
	srv.Stop()
	res := do(t, e.ingest, signed(e.server, e.key, body, true))
	res.want(t, http.StatusServiceUnavailable, "")
	if res.Header.Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q", res.Header.Get("Retry-After"))
	}
	hres := do(t, e.query, get("/api/healthz", ""))
	hres.want(t, http.StatusServiceUnavailable, "")
	if hres.Body["status"] != "unavailable" {
		t.Fatal(hres.Raw)
	}
	srv.Restart(t)
	// Restart loses the data (no save), so enroll again with the same key
	// semantics: a new key.
	key, err := e.store.AddHost(context.Background(), e.server)
	if err != nil {
		t.Fatal(err)
	}
	do(t, e.ingest, signed(e.server, key, body, true)).want(t, http.StatusAccepted, "")
}

// FuzzIngestHandler: whatever the headers and body, the handler answers
// JSON with a known status and never panics.
func FuzzIngestHandler(f *testing.F) {
	e := newEnv(f)
	good := batch(f, 2, nil)
	f.Add(e.server, "", "v1=00", "", good, true)
	f.Add(e.server, "", "", "gzip", gz(f, good), true)
	f.Add("x y", "1", "v1=zz", "br", []byte("{"), false)
	f.Add("", "", "", "", []byte{}, false)
	f.Add(e.server, "", "", "gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0}, true)
	// The API Gateway cases: application/gzip, base64 left encoded, gzip
	// delivered as text, and duplicate keys.
	z := gz(f, good)
	f.Add(e.server, "", "", "ctype:application/gzip", z, true)
	f.Add(e.server, "", "", "gzip", []byte(base64.StdEncoding.EncodeToString(z)), false)
	f.Add(e.server, "", "", "gzip", []byte(strings.ToValidUTF8(string(z), "\uFFFD")), false)
	f.Add(e.server, "", "", "", []byte(`{"samples":[],"samples":[]}`), true)
	f.Fuzz(func(t *testing.T, server, ts, sig, enc string, body []byte, sign bool) {
		r := httptest.NewRequest(http.MethodPost, "/api/ingest", bytes.NewReader(body))
		r.Header.Set(auth.HeaderServer, server)
		r.Header.Set(auth.HeaderTimestamp, ts)
		r.Header.Set(auth.HeaderSignature, sig)
		if ct, ok := strings.CutPrefix(enc, "ctype:"); ok {
			r.Header.Set("Content-Type", ct)
		} else {
			r.Header.Set("Content-Encoding", enc)
		}
		if sign {
			now := time.Now().Unix()
			r.Header.Set(auth.HeaderTimestamp, strconv.FormatInt(now, 10))
			r.Header.Set(auth.HeaderSignature, auth.Sign(e.key, now, server, body))
		}
		w := httptest.NewRecorder()
		e.ingest.ServeHTTP(w, r)
		res := decode(t, w.Code, w.Header(), w.Body.Bytes())
		switch res.Status {
		case 202, 400, 401, 413, 415:
		case 502:
			// Only a body declared gzip that is not gzip can be "changed
			// in transit", and only when its signature fails.
			if !strings.HasPrefix(res.Body["error"].(string), "body changed in transit") || bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
				t.Fatalf("502 for a gzip body: %s", res.Raw)
			}
		default:
			t.Fatalf("status %d: %s", res.Status, res.Raw)
		}
	})
}
