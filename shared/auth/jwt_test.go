package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// rsaKeys are generated once per test binary: 2048-bit generation is slow
// under -race.
var rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	var out []*rsa.PrivateKey
	for range 2 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		out = append(out, k)
	}
	return out
})

func newVerifier(tb testing.TB, cfg auth.VerifierConfig) *auth.Verifier {
	tb.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// sign mints a token with plain golang-jwt, as any third party would.
func sign(tb testing.TB, m jwt.SigningMethod, key any, claims jwt.Claims, header map[string]any) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

func claims(servers any, exp time.Time, extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{}
	if servers != nil {
		c["servers"] = servers
	}
	if !exp.IsZero() {
		c["exp"] = exp.Unix()
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func TestVerifyHS256(t *testing.T) {
	now := time.Now()
	hour := now.Add(time.Hour)
	plain := newVerifier(t, auth.VerifierConfig{Secret: testSecret})
	scoped := newVerifier(t, auth.VerifierConfig{Secret: testSecret, Issuer: "vitals", Audience: "vitals-api"})
	rsaKey := rsaKeys()[0]
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()

	issued, err := auth.IssueToken(testSecret, []string{"web-1", "db-1"}, time.Hour, "", "", now)
	if err != nil {
		t.Fatal(err)
	}
	issuedScoped, err := auth.IssueToken(testSecret, []string{"*"}, time.Hour, "vitals", "vitals-api", now)
	if err != nil {
		t.Fatal(err)
	}
	unsignedNone := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims([]string{"*"}, hour, nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	enc := base64.RawURLEncoding.EncodeToString
	body := enc([]byte(`{"servers":["*"],"exp":` + strconv.FormatInt(hour.Unix(), 10) + `}`))
	hs256 := sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, hour, nil), nil)
	parts := strings.Split(hs256, ".")

	tests := []struct {
		name    string
		v       *auth.Verifier
		token   string
		want    string   // "" = valid; else part of the error
		servers []string // on success
	}{
		{name: "IssueToken", v: plain, token: issued, servers: []string{"web-1", "db-1"}},
		{name: "IssueToken with issuer and audience", v: scoped, token: issuedScoped, servers: []string{"*"}},
		{name: "plain golang-jwt", v: plain, token: hs256, servers: []string{"*"}},
		{name: "plain golang-jwt with registered claims", v: scoped,
			token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"a", "b"}, hour, map[string]any{
				"iss": "vitals", "aud": []string{"other", "vitals-api"}, "sub": "alice", "iat": now.Unix(), "nbf": now.Unix(),
			}), map[string]any{"typ": "JWT", "kid": "ignored"}),
			servers: []string{"a", "b"}},
		{name: "aud as a string", v: scoped,
			token:   sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"a"}, hour, map[string]any{"iss": "vitals", "aud": "vitals-api"}), nil),
			servers: []string{"a"}},
		{name: "empty servers list reads nothing", v: plain,
			token:   sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{}, hour, nil), nil),
			servers: []string{}},

		{name: "alg none", v: plain, token: unsignedNone, want: "invalid token"},
		{name: "alg none hand-made", v: plain, token: enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + body + ".", want: "invalid token"},
		{name: "alg None with a signature", v: plain, token: enc([]byte(`{"alg":"None"}`)) + "." + body + "." + parts[2], want: "invalid token"},
		{name: "HS256 header over another alg's body", v: plain, token: enc([]byte(`{"alg":"HS256"}`)) + "." + body + "." + parts[2], want: "bad signature"},
		{name: "HS384 pinned out", v: plain, token: sign(t, jwt.SigningMethodHS384, testSecret, claims([]string{"*"}, hour, nil), nil), want: "not allowed"},
		{name: "HS512 pinned out", v: plain, token: sign(t, jwt.SigningMethodHS512, testSecret, claims([]string{"*"}, hour, nil), nil), want: "not allowed"},
		{name: "RS256 with a secret configured", v: plain, token: sign(t, jwt.SigningMethodRS256, rsaKey, claims([]string{"*"}, hour, nil), nil), want: "not allowed"},
		{name: "ES256 with a secret configured", v: plain, token: sign(t, jwt.SigningMethodES256, ecKey, claims([]string{"*"}, hour, nil), nil), want: "not allowed"},
		{name: "HS256 keyed with a public key", v: plain, token: sign(t, jwt.SigningMethodHS256, pubPEM, claims([]string{"*"}, hour, nil), nil), want: "bad signature"},
		{name: "wrong secret", v: plain, token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes......"), claims([]string{"*"}, hour, nil), nil), want: "bad signature"},
		{name: "tampered payload", v: plain, token: parts[0] + "." + enc([]byte(`{"servers":["*"],"exp":99999999999}`)) + "." + parts[2], want: "bad signature"},
		{name: "expired", v: plain, token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, now.Add(-time.Minute), nil), nil), want: "expired"},
		{name: "no exp", v: plain, token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, time.Time{}, nil), nil), want: "missing required claim"},
		{name: "exp not a number", v: plain, token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, time.Time{}, map[string]any{"exp": "tomorrow"}), nil), want: "invalid token"},
		{name: "nbf in the future", v: plain, token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, hour, map[string]any{"nbf": now.Add(10 * time.Minute).Unix()}), nil), want: "not valid yet"},
		{name: "wrong issuer", v: scoped, token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, hour, map[string]any{"iss": "evil", "aud": "vitals-api"}), nil), want: "wrong issuer"},
		{name: "missing issuer", v: scoped, token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, hour, map[string]any{"aud": "vitals-api"}), nil), want: "missing required claim iss"},
		{name: "wrong audience", v: scoped, token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, hour, map[string]any{"iss": "vitals", "aud": "other"}), nil), want: "wrong audience"},
		{name: "missing audience", v: scoped, token: sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, hour, map[string]any{"iss": "vitals"}), nil), want: "missing required claim aud"},
		{name: "issued without issuer and audience", v: scoped, token: issued, want: "invalid token"},
		{name: "missing servers claim", v: plain, token: sign(t, jwt.SigningMethodHS256, testSecret, claims(nil, hour, nil), nil), want: `no "servers" claim`},
		{name: "null servers claim", v: plain, token: sign(t, jwt.SigningMethodHS256, testSecret, claims(nil, hour, map[string]any{"servers": nil}), nil), want: `no "servers" claim`},
		{name: "servers claim a string", v: plain, token: sign(t, jwt.SigningMethodHS256, testSecret, claims("*", hour, nil), nil), want: "invalid token"},
		{name: "empty", v: plain, token: "", want: "missing token"},
		{name: "blank", v: plain, token: "  \t", want: "missing token"},
		{name: "garbage", v: plain, token: "not.a.token", want: "malformed"},
		{name: "two parts", v: plain, token: parts[0] + "." + parts[1], want: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.v.Verify(tc.token)
			if tc.want != "" {
				wantUnauthorized(t, err, tc.want, string(testSecret))
				if c != nil {
					t.Errorf("claims returned with an error: %+v", c)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(c.Servers, tc.servers) {
				t.Errorf("servers = %q, want %q", c.Servers, tc.servers)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, time.Now().Add(-30*time.Second), nil), nil)
	if _, err := newVerifier(t, auth.VerifierConfig{Secret: testSecret, Leeway: time.Minute}).Verify(tok); err != nil {
		t.Errorf("30 s past exp with 1 min leeway: %v", err)
	}
	_, err := newVerifier(t, auth.VerifierConfig{Secret: testSecret}).Verify(tok)
	wantUnauthorized(t, err, "expired")
}

func TestIssueTokenClaims(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := auth.IssueToken(testSecret, []string{"a"}, 24*time.Hour, "iss-x", "aud-y", now)
	if err != nil {
		t.Fatal(err)
	}
	var c auth.Claims
	// Parse without time checks to look at exactly what was minted.
	p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation())
	tk, err := p.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return testSecret, nil })
	if err != nil {
		t.Fatal(err)
	}
	if tk.Header["alg"] != "HS256" {
		t.Errorf("alg = %v", tk.Header["alg"])
	}
	if !c.ExpiresAt.Equal(now.Add(24*time.Hour)) || !c.IssuedAt.Equal(now) {
		t.Errorf("exp/iat = %v/%v", c.ExpiresAt, c.IssuedAt)
	}
	if c.Issuer != "iss-x" || !slices.Equal([]string(c.Audience), []string{"aud-y"}) || !slices.Equal(c.Servers, []string{"a"}) {
		t.Errorf("claims = %+v", c)
	}

	for _, tc := range []struct {
		name    string
		secret  []byte
		servers []string
		ttl     time.Duration
	}{
		{"short secret", []byte("short"), []string{"a"}, time.Hour},
		{"no servers", testSecret, nil, time.Hour},
		{"zero ttl", testSecret, []string{"a"}, 0},
		{"negative ttl", testSecret, []string{"a"}, -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := auth.IssueToken(tc.secret, tc.servers, tc.ttl, "", "", now); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestNewVerifierConfig(t *testing.T) {
	if _, err := auth.NewVerifier(auth.VerifierConfig{}); err == nil {
		t.Error("no secret and no keys: no error")
	}
	if _, err := auth.NewVerifier(auth.VerifierConfig{Secret: []byte("fifteen-bytes..")}); err == nil {
		t.Error("15-byte secret: no error")
	}
	for _, methods := range [][]string{nil, {"HS256"}, {"RS256", "none"}, {"RS512"}} {
		if _, err := auth.NewVerifier(auth.VerifierConfig{Keys: fakeKeys(methods)}); err == nil {
			t.Errorf("key source offering %q: no error", methods)
		}
	}
}

// fakeKeys is a KeySource whose Methods are whatever a test says.
type fakeKeys []string

func (f fakeKeys) Key(*jwt.Token) (any, error) { return nil, errors.New("no keys") }
func (f fakeKeys) Methods() []string           { return f }

func TestNewSecret(t *testing.T) {
	a, b := auth.NewSecret(), auth.NewSecret()
	if len(a) != 64 || a == b {
		t.Fatalf("NewSecret = %q, %q", a, b)
	}
	if _, err := hex.DecodeString(a); err != nil {
		t.Fatal(err)
	}
}

func TestCanRead(t *testing.T) {
	tests := []struct {
		servers []string
		id      string
		want    bool
	}{
		{[]string{"*"}, "web-1", true},
		{[]string{"*"}, "", true},
		{[]string{"web-1", "db-1"}, "db-1", true},
		{[]string{"web-1", "db-1"}, "web-2", false},
		{[]string{"web-1"}, "WEB-1", false},
		{[]string{"web-*"}, "web-1", false}, // no globbing, only the exact "*"
		{[]string{}, "web-1", false},
		{nil, "web-1", false},
	}
	for _, tc := range tests {
		c := &auth.Claims{Servers: tc.servers}
		if got := c.CanRead(tc.id); got != tc.want {
			t.Errorf("%q.CanRead(%q) = %v, want %v", tc.servers, tc.id, got, tc.want)
		}
		err := c.CheckRead(tc.id)
		switch {
		case tc.want && err != nil:
			t.Errorf("%q.CheckRead(%q) = %v", tc.servers, tc.id, err)
		case !tc.want && !errors.Is(err, metric.ErrForbidden):
			t.Errorf("%q.CheckRead(%q) = %v, want ErrForbidden", tc.servers, tc.id, err)
		}
	}
}

func TestBearerToken(t *testing.T) {
	tests := map[string]string{
		"Bearer abc.def.ghi":     "abc.def.ghi",
		"bearer abc":             "abc",
		"BEARER abc":             "abc",
		"  Bearer   abc  ":       "abc",
		"Bearer\tabc":            "",
		"Basic dXNlcjpwYXNz":     "",
		"Bearer":                 "",
		"Bearer ":                "",
		"Bearerabc":              "",
		"":                       "",
		"abc.def.ghi":            "",
		"Token abc":              "",
		"Bearer eyJhbGciOi.x.y ": "eyJhbGciOi.x.y",
	}
	for in, want := range tests {
		if got := auth.BearerToken(in); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

// raw signs a claims set written as JSON text exactly as given (duplicate,
// case-variant or oddly typed members included), HS256 with testSecret.
func raw(tb testing.TB, payload string) string {
	tb.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	signing := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(payload))
	sig, err := jwt.SigningMethodHS256.Sign(signing, testSecret)
	if err != nil {
		tb.Fatal(err)
	}
	return signing + "." + enc(sig)
}

// TestVerifyClaimsRFC7519: claim names are case-sensitive, a claim appears
// once, NumericDate claims are JSON numbers, and a token issued in the
// future is refused (RFC 7519 sections 2, 4 and 4.1.6).
func TestVerifyClaimsRFC7519(t *testing.T) {
	now := time.Now()
	exp := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	iat := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	plain := newVerifier(t, auth.VerifierConfig{Secret: testSecret, Leeway: 30 * time.Second})
	scoped := newVerifier(t, auth.VerifierConfig{Secret: testSecret, Leeway: 30 * time.Second, Issuer: "vitals", Audience: "vitals-api"})

	tests := []struct {
		name    string
		v       *auth.Verifier
		payload string
		want    string   // "" = valid; else part of the error
		servers []string // on success
	}{
		{name: "iat now", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"iat":` + iat(0) + `}`, servers: []string{"*"}},
		{name: "iat within the leeway", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"iat":` + iat(20*time.Second) + `}`, servers: []string{"*"}},
		{name: "iat in the future", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"iat":` + iat(10*time.Minute) + `}`, want: "issued in the future"},
		{name: "iat just past the leeway", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"iat":` + iat(2*time.Minute) + `}`, want: "issued in the future"},
		{name: "fractional exp", v: plain, payload: `{"servers":["*"],"exp":` + exp + `.5}`, servers: []string{"*"}},
		{name: "exp with an exponent", v: plain, payload: `{"servers":["*"],"exp":` + fmt.Sprintf("%.9e", float64(now.Add(time.Hour).Unix())) + `}`, servers: []string{"*"}},
		{name: "unknown claims ignored", v: plain, payload: `{"servers":["a"],"exp":` + exp + `,"sub":"alice","jti":"x1","custom":{"k":[1,2]}}`, servers: []string{"a"}},

		{name: "exp as a numeric string", v: plain, payload: `{"servers":["*"],"exp":"` + exp + `"}`, want: "exp"},
		{name: "iat as a numeric string", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"iat":"` + iat(0) + `"}`, want: "iat"},
		{name: "nbf as a numeric string", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"nbf":"` + iat(0) + `"}`, want: "nbf"},
		{name: "exp true", v: plain, payload: `{"servers":["*"],"exp":true}`, want: "exp"},
		{name: "exp out of range", v: plain, payload: `{"servers":["*"],"exp":1e300}`, want: "exp"},
		{name: "exp negative", v: plain, payload: `{"servers":["*"],"exp":-1}`, want: "exp"},
		{name: "EXP is not exp", v: plain, payload: `{"servers":["*"],"EXP":` + exp + `}`, want: "missing required claim exp"},
		{name: "Exp is not exp", v: plain, payload: `{"servers":["*"],"Exp":` + exp + `}`, want: "missing required claim exp"},
		{name: "Servers is not servers", v: plain, payload: `{"Servers":["*"],"exp":` + exp + `}`, want: `no "servers" claim`},
		{name: "SERVERS after servers is another claim", v: plain, payload: `{"servers":["web-1"],"SERVERS":["*"],"exp":` + exp + `}`, servers: []string{"web-1"}},
		{name: "IAT in the future is another claim", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"IAT":` + iat(time.Hour) + `}`, servers: []string{"*"}},
		{name: "ISS is not iss", v: scoped, payload: `{"servers":["*"],"exp":` + exp + `,"ISS":"vitals","aud":"vitals-api"}`, want: "missing required claim iss"},
		{name: "Aud is not aud", v: scoped, payload: `{"servers":["*"],"exp":` + exp + `,"iss":"vitals","Aud":"vitals-api"}`, want: "missing required claim aud"},
		{name: "duplicate servers", v: plain, payload: `{"servers":["web-1"],"servers":["*"],"exp":` + exp + `}`, want: "duplicate"},
		{name: "duplicate exp", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"exp":99999999999}`, want: "duplicate"},
		{name: "duplicate unknown claim", v: plain, payload: `{"servers":["*"],"exp":` + exp + `,"x":1,"x":2}`, want: "duplicate"},
		{name: "iss a number", v: scoped, payload: `{"servers":["*"],"exp":` + exp + `,"iss":1,"aud":"vitals-api"}`, want: "iss"},
		{name: "aud a number", v: scoped, payload: `{"servers":["*"],"exp":` + exp + `,"iss":"vitals","aud":1}`, want: "aud"},
		{name: "aud list with a number", v: scoped, payload: `{"servers":["*"],"exp":` + exp + `,"iss":"vitals","aud":["vitals-api",1]}`, want: "aud"},
		{name: "servers with a number", v: plain, payload: `{"servers":["a",1],"exp":` + exp + `}`, want: "servers"},
		{name: "claims not an object", v: plain, payload: `["servers"]`, want: "invalid token"},
	}
	t.Run("duplicate header name", func(t *testing.T) {
		enc := base64.RawURLEncoding.EncodeToString
		for _, header := range []string{`{"alg":"HS256","alg":"HS256"}`, `{"alg":"none","alg":"HS256"}`, `{"alg":"HS256","kid":"a","kid":"b"}`} {
			signing := enc([]byte(header)) + "." + enc([]byte(`{"servers":["*"],"exp":`+exp+`}`))
			sig, err := jwt.SigningMethodHS256.Sign(signing, testSecret)
			if err != nil {
				t.Fatal(err)
			}
			_, err = plain.Verify(signing + "." + enc(sig))
			wantUnauthorized(t, err, "duplicate name")
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.v.Verify(raw(t, tc.payload))
			if tc.want != "" {
				wantUnauthorized(t, err, tc.want, string(testSecret))
				if c != nil {
					t.Errorf("claims returned with an error: %+v", c)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(c.Servers, tc.servers) {
				t.Errorf("servers = %q, want %q", c.Servers, tc.servers)
			}
		})
	}
}

// TestVerifyMaxTTL: with MaxTTL set, a token whose lifetime (exp - iat, or
// exp - now without iat) exceeds it is refused; without MaxTTL any lifetime
// is accepted.
func TestVerifyMaxTTL(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	limited := newVerifier(t, auth.VerifierConfig{Secret: testSecret, Leeway: 30 * time.Second, MaxTTL: 7 * day})
	unlimited := newVerifier(t, auth.VerifierConfig{Secret: testSecret, Leeway: 30 * time.Second})
	tok := func(iat time.Time, exp time.Time) string {
		extra := map[string]any{}
		if !iat.IsZero() {
			extra["iat"] = iat.Unix()
		}
		return sign(t, jwt.SigningMethodHS256, testSecret, claims([]string{"*"}, exp, extra), nil)
	}
	issued, err := auth.IssueToken(testSecret, []string{"*"}, 7*day, "", "", now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token string
		want  string // "" = valid under limited
	}{
		{"IssueToken at the maximum", issued, ""},
		{"iat now, 1 day", tok(now, now.Add(day)), ""},
		{"iat now, 8 days", tok(now, now.Add(8*day)), "lifetime"},
		{"issued 6 days ago for 8 days", tok(now.Add(-6*day), now.Add(2*day)), "lifetime"},
		{"no iat, 6 days left", tok(time.Time{}, now.Add(6*day)), ""},
		{"no iat, 8 days left", tok(time.Time{}, now.Add(8*day)), "lifetime"},
		{"no iat, year 9999", tok(time.Time{}, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)), "lifetime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := limited.Verify(tc.token)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
			} else {
				wantUnauthorized(t, err, tc.want)
			}
			if _, err := unlimited.Verify(tc.token); err != nil {
				t.Errorf("without MaxTTL: %v", err)
			}
		})
	}
	if _, err := auth.NewVerifier(auth.VerifierConfig{Secret: testSecret, MaxTTL: -time.Hour}); err == nil {
		t.Error("negative MaxTTL: no error")
	}
}
