package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/auth"
)

// jwksServer serves a key set the test can change, and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]any
	status  int
	fetches atomic.Int64
}

func newJWKSServer(tb testing.TB, keys ...map[string]any) *jwksServer {
	tb.Helper()
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, keys := s.status, s.keys
		s.mu.Unlock()
		if status != http.StatusOK {
			http.Error(w, "unavailable", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, keys ...map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.keys = status, keys
}

var b64u = base64.RawURLEncoding.EncodeToString

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	m := map[string]any{"kty": "RSA", "use": "sig", "alg": "RS256",
		"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	b, err := k.Bytes() // 0x04 || x || y
	if err != nil {
		panic(err)
	}
	m := map[string]any{"kty": "EC", "crv": "P-256", "x": b64u(b[1:33]), "y": b64u(b[33:])}
	if kid != "" {
		m["kid"] = kid
	}
	return m
}

// fakeClock is a concurrency-safe clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newJWKS(tb testing.TB, url string) (*auth.JWKS, *fakeClock) {
	tb.Helper()
	j, err := auth.NewJWKS(context.Background(), url, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("NewJWKS: %v", err)
	}
	clk := newFakeClock()
	auth.SetJWKSClock(j, clk.Now)
	return j, clk
}

func genEC(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestJWKSVerify(t *testing.T) {
	r1, r2 := rsaKeys()[0], rsaKeys()[1]
	e1 := genEC(t)
	srv := newJWKSServer(t,
		rsaJWK("r1", &r1.PublicKey),
		ecJWK("e1", &e1.PublicKey),
		map[string]any{"kty": "oct", "kid": "h1", "k": b64u(testSecret)}, // must be ignored
		map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": b64u(r2.N.Bytes()), "e": "AQAB"},
	)
	j, _ := newJWKS(t, srv.URL)
	if got := j.Methods(); !slices.Equal(got, []string{"RS256", "ES256"}) {
		t.Fatalf("Methods = %q", got)
	}
	v := newVerifier(t, auth.VerifierConfig{Keys: j, Issuer: "idp", Audience: "vitals"})
	hour := time.Now().Add(time.Hour)
	good := claims([]string{"web-1"}, hour, map[string]any{"iss": "idp", "aud": "vitals"})
	kid := func(k string) map[string]any { return map[string]any{"kid": k} }

	tests := []struct {
		name  string
		token string
		want  string
	}{
		{"RS256 by kid", sign(t, jwt.SigningMethodRS256, r1, good, kid("r1")), ""},
		{"ES256 by kid", sign(t, jwt.SigningMethodES256, e1, good, kid("e1")), ""},
		{"RS256 with the EC kid", sign(t, jwt.SigningMethodRS256, r1, good, kid("e1")), "unverifiable"},
		{"ES256 with the RSA kid", sign(t, jwt.SigningMethodES256, e1, good, kid("r1")), "unverifiable"},
		{"no kid among several keys", sign(t, jwt.SigningMethodRS256, r1, good, nil), "unverifiable"},
		{"kid not a string", sign(t, jwt.SigningMethodRS256, r1, good, map[string]any{"kid": 7}), "unverifiable"},
		{"signed by a key not in the set", sign(t, jwt.SigningMethodRS256, r2, good, kid("r1")), "bad signature"},
		{"encryption key ignored", sign(t, jwt.SigningMethodRS256, r2, good, kid("enc")), "unverifiable"},
		{"HS256 with the oct key", sign(t, jwt.SigningMethodHS256, testSecret, good, kid("h1")), "not allowed"},
		{"HS256 keyed with the RSA modulus", sign(t, jwt.SigningMethodHS256, r1.N.Bytes(), good, kid("r1")), "not allowed"},
		{"RS384 pinned out", sign(t, jwt.SigningMethodRS384, r1, good, kid("r1")), "not allowed"},
		{"PS256 pinned out", sign(t, jwt.SigningMethodPS256, r1, good, kid("r1")), "not allowed"},
		{"alg none", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, good).SignedString(jwt.UnsafeAllowNoneSignatureType)
			return s
		}(), "invalid token"},
		{"expired", sign(t, jwt.SigningMethodRS256, r1, claims([]string{"*"}, time.Now().Add(-time.Hour), map[string]any{"iss": "idp", "aud": "vitals"}), kid("r1")), "expired"},
		{"no exp", sign(t, jwt.SigningMethodES256, e1, claims([]string{"*"}, time.Time{}, map[string]any{"iss": "idp", "aud": "vitals"}), kid("e1")), "missing required claim"},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, r1, claims([]string{"*"}, hour, map[string]any{"iss": "idp", "aud": "x"}), kid("r1")), "wrong audience"},
		{"missing servers", sign(t, jwt.SigningMethodRS256, r1, claims(nil, hour, map[string]any{"iss": "idp", "aud": "vitals"}), kid("r1")), `no "servers" claim`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.token)
			if tc.want != "" {
				wantUnauthorized(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !c.CanRead("web-1") || c.CanRead("web-2") {
				t.Errorf("servers = %q", c.Servers)
			}
		})
	}
}

func TestJWKSSingleKeyWithoutKid(t *testing.T) {
	e1 := genEC(t)
	srv := newJWKSServer(t, ecJWK("", &e1.PublicKey))
	j, _ := newJWKS(t, srv.URL)
	if got := j.Methods(); !slices.Equal(got, []string{"ES256"}) {
		t.Fatalf("Methods = %q, want only ES256", got)
	}
	v := newVerifier(t, auth.VerifierConfig{Keys: j})
	if _, err := v.Verify(sign(t, jwt.SigningMethodES256, e1, claims([]string{"*"}, time.Now().Add(time.Hour), nil), nil)); err != nil {
		t.Fatalf("token without kid, one key: %v", err)
	}
	// RS256 is not even offered when the set holds no RSA key.
	_, err := v.Verify(sign(t, jwt.SigningMethodRS256, rsaKeys()[0], claims([]string{"*"}, time.Now().Add(time.Hour), nil), nil))
	wantUnauthorized(t, err, "not allowed")
}

func TestJWKSRefresh(t *testing.T) {
	r1, r2 := rsaKeys()[0], rsaKeys()[1]
	srv := newJWKSServer(t, rsaJWK("r1", &r1.PublicKey))
	j, clk := newJWKS(t, srv.URL)
	v := newVerifier(t, auth.VerifierConfig{Keys: j})
	tok := func(k *rsa.PrivateKey, kid string) string {
		return sign(t, jwt.SigningMethodRS256, k, claims([]string{"*"}, time.Now().Add(time.Hour), nil), map[string]any{"kid": kid})
	}
	fetches := func(want int64) {
		t.Helper()
		if got := srv.fetches.Load(); got != want {
			t.Fatalf("fetches = %d, want %d", got, want)
		}
	}
	verify := func(token, want string) {
		t.Helper()
		_, err := v.Verify(token)
		if want == "" {
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			return
		}
		wantUnauthorized(t, err, want)
	}
	fetches(1)
	verify(tok(r1, "r1"), "")
	fetches(1) // cached

	// The provider rotates in r2. Within the first minute an unknown kid
	// does not refetch (the floor protects the provider from forged kids)…
	srv.set(http.StatusOK, rsaJWK("r1", &r1.PublicKey), rsaJWK("r2", &r2.PublicKey))
	verify(tok(r2, "r2"), "unverifiable")
	fetches(1)
	// …after it, one refetch finds the new key.
	clk.Advance(auth.JWKSMinRefresh)
	verify(tok(r2, "r2"), "")
	fetches(2)
	verify(tok(r1, "r1"), "") // overlap: both keys valid
	// A storm of unknown kids costs at most one fetch per minute.
	clk.Advance(auth.JWKSMinRefresh)
	for i := range 20 {
		verify(tok(r2, "forged-"+string(rune('a'+i))), "unverifiable")
	}
	fetches(3)

	// The provider drops r1: once the cache is older than the refresh
	// interval, the next verification refetches and r1 stops working.
	srv.set(http.StatusOK, rsaJWK("r2", &r2.PublicKey))
	verify(tok(r1, "r1"), "")
	clk.Advance(auth.JWKSRefreshInterval)
	verify(tok(r1, "r1"), "unverifiable")
	fetches(4)

	// A failing provider leaves the cached keys in service, and is retried
	// no more than once per minute.
	srv.set(http.StatusInternalServerError)
	clk.Advance(auth.JWKSRefreshInterval)
	verify(tok(r2, "r2"), "")
	fetches(5)
	verify(tok(r2, "r2"), "")
	fetches(5)
	clk.Advance(auth.JWKSMinRefresh)
	srv.set(http.StatusOK, rsaJWK("r1", &r1.PublicKey), rsaJWK("r2", &r2.PublicKey))
	verify(tok(r1, "r1"), "")
	fetches(6)
}

func TestJWKSConcurrentRefresh(t *testing.T) {
	r1 := rsaKeys()[0]
	srv := newJWKSServer(t, rsaJWK("r1", &r1.PublicKey))
	j, clk := newJWKS(t, srv.URL)
	v := newVerifier(t, auth.VerifierConfig{Keys: j})
	clk.Advance(auth.JWKSRefreshInterval)
	good := sign(t, jwt.SigningMethodRS256, r1, claims([]string{"*"}, time.Now().Add(time.Hour), nil), map[string]any{"kid": "r1"})
	unknown := sign(t, jwt.SigningMethodRS256, r1, claims([]string{"*"}, time.Now().Add(time.Hour), nil), map[string]any{"kid": "nope"})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			tok := good
			if i%2 == 1 {
				tok = unknown
			}
			_, err := v.Verify(tok)
			if (err == nil) != (tok == good) {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if got := srv.fetches.Load(); got != 2 {
		t.Errorf("fetches = %d, want 2 (initial + one refresh shared by all)", got)
	}
}

func TestNewJWKSErrors(t *testing.T) {
	r1 := rsaKeys()[0]
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	e1 := genEC(t)
	offCurve := ecJWK("bad", &e1.PublicKey)
	offCurve["y"] = b64u(make([]byte, 32))
	p384 := ecJWK("p384", &e1.PublicKey)
	p384["crv"] = "P-384"
	rs512 := rsaJWK("rs512", &r1.PublicKey)
	rs512["alg"] = "RS512"
	evenE := rsaJWK("even", &r1.PublicKey)
	evenE["e"] = b64u([]byte{2})
	badN := rsaJWK("badn", &r1.PublicKey)
	badN["n"] = "!!!"

	tests := []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "404"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }, "not a JSON key set"},
		{"no keys", jsonKeys(), "no usable key"},
		{"only HMAC", jsonKeys(map[string]any{"kty": "oct", "k": b64u(testSecret)}), "no usable key"},
		{"RSA key too small", jsonKeys(rsaJWK("s", &small.PublicKey)), "no usable key"},
		{"EC point off the curve", jsonKeys(offCurve), "no usable key"},
		{"EC P-384", jsonKeys(p384), "no usable key"},
		{"RSA alg RS512", jsonKeys(rs512), "no usable key"},
		{"RSA even exponent", jsonKeys(evenE), "no usable key"},
		{"RSA bad modulus", jsonKeys(badN), "no usable key"},
		{"duplicate kid", jsonKeys(rsaJWK("k", &r1.PublicKey), ecJWK("k", &e1.PublicKey)), "two keys"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 1<<20) + `]}`))
		}, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			_, err := auth.NewJWKS(context.Background(), srv.URL, srv.Client(), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewJWKS error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := auth.NewJWKS(context.Background(), "", nil, nil); err == nil {
		t.Error("empty url: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv := newJWKSServer(t, rsaJWK("r1", &r1.PublicKey))
	if _, err := auth.NewJWKS(ctx, srv.URL, nil, nil); err == nil {
		t.Error("cancelled context: no error")
	}
}

func jsonKeys(keys ...map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}
}
