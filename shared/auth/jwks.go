package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWKS limits and timings.
const (
	// JWKSMinRefresh is the least time between two fetches. An unknown kid
	// triggers a refetch, and attackers choose kids freely, so without this
	// floor every forged token would cost a request to the identity provider.
	JWKSMinRefresh = time.Minute
	// JWKSRefreshInterval is how old the cached key set may grow before the
	// next verification refetches it, so a key removed upstream stops being
	// accepted without a restart.
	JWKSRefreshInterval = 15 * time.Minute
	// jwksMaxBody bounds what we read from the JWKS endpoint.
	jwksMaxBody = 1 << 20
	// jwksFetchTimeout bounds a refresh triggered by a verification, which
	// has no context of its own.
	jwksFetchTimeout = 10 * time.Second
	// minRSABits refuses toy RSA keys a misconfigured provider might publish.
	minRSABits = 2048
)

// jwksAlgs are the only algorithms a JWKS key can verify: asymmetric ones.
// HMAC ("oct" keys) and "none" are never accepted from a key set.
var jwksAlgs = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}

// JWKS is a KeySource backed by a JSON Web Key Set fetched over HTTP: RSA
// keys verify RS256 and EC P-256 keys ES256; every other key in the set is
// ignored. Keys are cached; the set is refetched when a token names an
// unknown kid (at most once per JWKSMinRefresh) and when it is older than
// JWKSRefreshInterval, on the next verification. A failed refresh keeps the
// cached keys. No goroutine runs in the background, which suits Lambda,
// whose processes are frozen between invocations. Safe for concurrent use.
type JWKS struct {
	url    string
	client *http.Client
	logger *slog.Logger
	now    func() time.Time // replaced by tests

	// fetchMu serialises refreshes so a burst of unknown kids costs one fetch.
	fetchMu sync.Mutex

	mu          sync.RWMutex
	keys        map[string]jwk // by kid; "" for a key without one
	lastAttempt time.Time      // of any fetch, good or bad
	lastSuccess time.Time
}

// jwk is one usable key of the set.
type jwk struct {
	alg string // RS256 or ES256
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

var _ KeySource = (*JWKS)(nil)

// NewJWKS fetches the key set at url and returns a KeySource for it. client
// may be nil (a client with a 10 s timeout is used). It fails when the set
// cannot be fetched or holds no usable RS256/ES256 key.
func NewJWKS(ctx context.Context, url string, client *http.Client, logger *slog.Logger) (*JWKS, error) {
	if url == "" {
		return nil, errors.New("jwks: url is required")
	}
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	j := &JWKS{url: url, client: client, logger: logger, now: time.Now}
	if err := j.refresh(ctx); err != nil {
		return nil, err
	}
	return j, nil
}

// Methods lists the algorithms the current keys support: RS256 and/or ES256,
// never an HMAC algorithm or "none". A Verifier reads it once, when built.
func (j *JWKS) Methods() []string {
	j.mu.RLock()
	defer j.mu.RUnlock()
	var out []string
	for _, alg := range jwksAlgs {
		for _, k := range j.keys {
			if k.alg == alg {
				out = append(out, alg)
				break
			}
		}
	}
	return out
}

// Key returns the public key for a token: the key named by its "kid"
// header, or the only key of the set when the token names none. The key's
// type must match the token's algorithm, so an RSA key can never be used
// as an HMAC secret or the other way round.
func (j *JWKS) Key(token *jwt.Token) (any, error) {
	if token == nil || token.Method == nil {
		return nil, errors.New("jwks: no token")
	}
	alg := token.Method.Alg()
	if !slices.Contains(jwksAlgs, alg) {
		return nil, fmt.Errorf("jwks: algorithm %q is not accepted", alg)
	}
	kid, hasKid := "", false
	if v, ok := token.Header["kid"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, errors.New("jwks: kid must be a string")
		}
		kid, hasKid = s, true
	}

	j.maybeRefresh(false)
	k, err := j.lookup(kid, hasKid)
	if errors.Is(err, errUnknownKid) {
		// The provider may have rotated in a new key since our last fetch.
		j.maybeRefresh(true)
		k, err = j.lookup(kid, hasKid)
	}
	if err != nil {
		return nil, err
	}
	if k.alg != alg {
		return nil, fmt.Errorf("jwks: key %q is for %s, token says %s", kid, k.alg, alg)
	}
	return k.key, nil
}

var errUnknownKid = errors.New("jwks: unknown kid")

func (j *JWKS) lookup(kid string, hasKid bool) (jwk, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if hasKid {
		if k, ok := j.keys[kid]; ok {
			return k, nil
		}
		return jwk{}, fmt.Errorf("%w %q", errUnknownKid, kid)
	}
	// Without a kid the key is only unambiguous when the set has one key.
	if len(j.keys) == 1 {
		for _, k := range j.keys {
			return k, nil
		}
	}
	return jwk{}, errors.New("jwks: token has no kid and the key set holds more than one key")
}

// maybeRefresh refetches the set when it is stale, or (unknownKid) when a
// token named a kid we lack, but never twice within JWKSMinRefresh.
func (j *JWKS) maybeRefresh(unknownKid bool) {
	if !j.due(unknownKid) {
		return
	}
	j.fetchMu.Lock()
	defer j.fetchMu.Unlock()
	if !j.due(unknownKid) { // another caller refreshed while we waited
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), jwksFetchTimeout)
	defer cancel()
	if err := j.refresh(ctx); err != nil {
		j.logger.Warn("jwks refresh failed; keeping cached keys", "url", j.url, "err", err)
	}
}

func (j *JWKS) due(unknownKid bool) bool {
	j.mu.RLock()
	defer j.mu.RUnlock()
	now := j.now()
	if now.Sub(j.lastAttempt) < JWKSMinRefresh {
		return false
	}
	return unknownKid || now.Sub(j.lastSuccess) >= JWKSRefreshInterval
}

// refresh fetches and parses the set, replacing the cache on success.
func (j *JWKS) refresh(ctx context.Context) error {
	j.mu.Lock()
	j.lastAttempt = j.now()
	j.mu.Unlock()

	keys, err := j.fetch(ctx)
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.keys = keys
	j.lastSuccess = j.now()
	j.mu.Unlock()
	j.logger.Debug("jwks fetched", "url", j.url, "keys", len(keys))
	return nil
}

func (j *JWKS) fetch(ctx context.Context) (map[string]jwk, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch %s: %w", j.url, err)
	}
	defer resp.Body.Close() //nolint:errcheck // read-only response body; a close error loses nothing
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: fetch %s: status %s", j.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: read %s: %w", j.url, err)
	}
	if len(body) > jwksMaxBody {
		return nil, fmt.Errorf("jwks: %s is larger than %d bytes", j.url, jwksMaxBody)
	}
	return parseJWKS(body, j.logger)
}

// rawJWK is a key as published; only the members we use.
type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS keeps the set's usable keys. Keys of other types, curves, uses
// or algorithms are skipped (a provider may publish encryption keys too);
// a malformed RSA or EC key is skipped with a warning. A set with no usable
// key, or two usable keys under one kid, is an error.
func parseJWKS(body []byte, logger *slog.Logger) (map[string]jwk, error) {
	var set struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: not a JSON key set: %w", err)
	}
	keys := make(map[string]jwk, len(set.Keys))
	for i, r := range set.Keys {
		k, err := r.parse()
		if err != nil {
			logger.Warn("jwks: skipping key", "index", i, "kid", r.Kid, "err", err)
			continue
		}
		if _, dup := keys[r.Kid]; dup {
			return nil, fmt.Errorf("jwks: two keys with kid %q", r.Kid)
		}
		keys[r.Kid] = k
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("jwks: no usable key (need RSA for RS256 or EC P-256 for ES256) among %d", len(set.Keys))
	}
	return keys, nil
}

func (r rawJWK) parse() (jwk, error) {
	if r.Use != "" && r.Use != "sig" {
		return jwk{}, fmt.Errorf("use %q is not \"sig\"", r.Use)
	}
	switch r.Kty {
	case "RSA":
		if r.Alg != "" && r.Alg != "RS256" {
			return jwk{}, fmt.Errorf("alg %q is not supported for RSA keys (RS256 only)", r.Alg)
		}
		k, err := rsaKey(r.N, r.E)
		if err != nil {
			return jwk{}, err
		}
		return jwk{alg: "RS256", key: k}, nil
	case "EC":
		if r.Alg != "" && r.Alg != "ES256" {
			return jwk{}, fmt.Errorf("alg %q is not supported for EC keys (ES256 only)", r.Alg)
		}
		if r.Crv != "P-256" {
			return jwk{}, fmt.Errorf("curve %q is not supported (P-256 only)", r.Crv)
		}
		k, err := ecKey(r.X, r.Y)
		if err != nil {
			return jwk{}, err
		}
		return jwk{alg: "ES256", key: k}, nil
	default:
		// "oct" (HMAC) keys in particular are never used: a shared secret
		// published in a key set is no secret.
		return jwk{}, fmt.Errorf("key type %q is not supported", r.Kty)
	}
}

// b64 decodes base64url, tolerating the padding RFC 7515 says to omit.
func b64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%s is not base64url", field)
	}
	return b, nil
}

func rsaKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := b64("n", n)
	if err != nil {
		return nil, err
	}
	eb, err := b64("e", e)
	if err != nil {
		return nil, err
	}
	if len(eb) > 4 {
		return nil, errors.New("e is too large")
	}
	var exp int
	for _, b := range eb {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("e = %d is not a valid RSA exponent", exp)
	}
	mod := new(big.Int).SetBytes(nb)
	if mod.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits is too small (minimum %d)", mod.BitLen(), minRSABits)
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}

func ecKey(x, y string) (*ecdsa.PublicKey, error) {
	xb, err := b64("x", x)
	if err != nil {
		return nil, err
	}
	yb, err := b64("y", y)
	if err != nil {
		return nil, err
	}
	if len(xb) != 32 || len(yb) != 32 {
		return nil, errors.New("x and y must be 32 bytes each for P-256")
	}
	// ParseUncompressedPublicKey rejects points not on the curve, which
	// would otherwise open invalid-curve attacks.
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xb...), yb...))
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return k, nil
}
