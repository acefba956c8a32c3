package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/metric"
)

// Claims are the claims of a Vitals user token.
type Claims struct {
	// Servers lists the server ids the token may read; "*" means all.
	Servers []string `json:"servers"`
	// Scope is space-separated permissions (RFC 8693), e.g. "alerts:write".
	Scope string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// UnmarshalJSON decodes a token's claims set as RFC 7519 reads it, not as
// encoding/json would: member names are case-sensitive ("EXP" is not
// "exp"), a name may appear only once, "exp", "nbf" and "iat" must be JSON
// numbers (a NumericDate, never a string), "iss", "sub", "jti" and "scope"
// strings, "aud" a string or a list of strings and "servers" a list of
// strings. A
// null member counts as absent; other members are ignored. encoding/json
// (which golang-jwt uses) matches names case-insensitively and lets the last
// duplicate win, so a signed token could mean one thing to us and another to
// any other verifier; the parser calls this method instead.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var members map[string]jsontext.Value
	if err := jsonv2.Unmarshal(b, &members); err != nil {
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return &claimsError{"duplicate claim name (a claim may appear only once)"}
		}
		return &claimsError{"the claims set is not a JSON object"}
	}
	out := Claims{}
	var err error
	if out.Servers, err = stringList(members, "servers", false); err != nil {
		return err
	}
	aud, err := stringList(members, "aud", true)
	if err != nil {
		return err
	}
	if aud != nil {
		out.Audience = jwt.ClaimStrings(aud)
	}
	// In a fixed order, so a token with several bad claims always gets the
	// same message.
	for _, s := range []struct {
		name string
		dst  *string
	}{{"iss", &out.Issuer}, {"sub", &out.Subject}, {"jti", &out.ID}, {"scope", &out.Scope}} {
		if *s.dst, err = stringClaim(members, s.name); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		name string
		dst  **jwt.NumericDate
	}{{"exp", &out.ExpiresAt}, {"nbf", &out.NotBefore}, {"iat", &out.IssuedAt}} {
		if *d.dst, err = numericDate(members, d.name); err != nil {
			return err
		}
	}
	*c = out
	return nil
}

// claimsError is a claims set that breaks RFC 7519; its message is safe to
// show the client (it names a claim, never a value).
type claimsError struct{ msg string }

func (e *claimsError) Error() string { return e.msg }

// present returns the value of the member name, or nil when it is absent
// or null.
func present(members map[string]jsontext.Value, name string) jsontext.Value {
	v, ok := members[name]
	if !ok || v.Kind() == 'n' {
		return nil
	}
	return v
}

func stringClaim(members map[string]jsontext.Value, name string) (string, error) {
	v := present(members, name)
	if v == nil {
		return "", nil
	}
	var s string
	if v.Kind() != '"' || jsonv2.Unmarshal(v, &s) != nil {
		return "", &claimsError{fmt.Sprintf("claim %q must be a string", name)}
	}
	return s, nil
}

// stringList decodes a list of strings; orOne also accepts a single string
// (RFC 7519's "aud"). It returns nil when the member is absent.
func stringList(members map[string]jsontext.Value, name string, orOne bool) ([]string, error) {
	v := present(members, name)
	if v == nil {
		return nil, nil
	}
	if orOne && v.Kind() == '"' {
		s, err := stringClaim(members, name)
		return []string{s}, err
	}
	var items []jsontext.Value
	if v.Kind() == '[' && jsonv2.Unmarshal(v, &items) == nil {
		out := make([]string, 0, len(items))
		for _, it := range items {
			var s string
			if it.Kind() != '"' || jsonv2.Unmarshal(it, &s) != nil {
				break
			}
			out = append(out, s)
		}
		if len(out) == len(items) {
			return out, nil
		}
	}
	if orOne {
		return nil, &claimsError{fmt.Sprintf("claim %q must be a string or a list of strings", name)}
	}
	return nil, &claimsError{fmt.Sprintf("claim %q must be a list of strings", name)}
}

// maxNumericDate is 9999-12-31T23:59:59Z: a later date is not a date a
// token means but an overflow waiting to happen.
const maxNumericDate = 253402300799

// numericDate decodes an RFC 7519 NumericDate: a JSON number of seconds
// since the epoch, possibly fractional, never a string.
func numericDate(members map[string]jsontext.Value, name string) (*jwt.NumericDate, error) {
	v := present(members, name)
	if v == nil {
		return nil, nil
	}
	bad := &claimsError{fmt.Sprintf("claim %q must be a NumericDate: a JSON number of seconds since 1970 (not a string)", name)}
	if v.Kind() != '0' {
		return nil, bad
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return nil, bad
	}
	sec, frac := math.Modf(f)
	return jwt.NewNumericDate(time.Unix(int64(sec), int64(frac*1e9))), nil
}

// CanRead reports whether the token may read serverID (and so its instances).
func (c *Claims) CanRead(serverID string) bool {
	return slices.Contains(c.Servers, "*") || slices.Contains(c.Servers, serverID)
}

// CheckRead returns nil when the token may read serverID, else ErrForbidden.
func (c *Claims) CheckRead(serverID string) error {
	if c.CanRead(serverID) {
		return nil
	}
	return metric.Errorf(metric.ErrForbidden, "token may not read server %q", serverID)
}

// VerifierConfig configures token verification.
type VerifierConfig struct {
	// Secret is the HS256 shared secret (VITALS_JWT_SECRET). Required unless
	// Keys is set.
	Secret []byte
	// Keys, when set, verifies asymmetric tokens instead (RS256/ES256 from a
	// JWKS, see NewJWKS); the methods it accepts are pinned by its Methods.
	Keys KeySource
	// Issuer and Audience are checked when non-empty.
	Issuer   string
	Audience string
	// Leeway tolerates clock skew on exp/nbf/iat: a token is refused once
	// exp+Leeway has passed, and while nbf-Leeway or iat-Leeway is still
	// ahead (a token issued in the future).
	Leeway time.Duration
	// MaxTTL, when positive, refuses a token whose lifetime is longer:
	// exp - iat, or exp - now (beyond Leeway) for a token without iat. Zero
	// accepts any lifetime.
	MaxTTL time.Duration
}

// KeySource supplies verification keys for asymmetric tokens.
type KeySource interface {
	// Key returns the public key for a token header (its "kid").
	Key(token *jwt.Token) (any, error)
	// Methods lists the accepted signing algorithms, e.g. ["RS256","ES256"].
	Methods() []string
}

// Verifier checks user tokens. It is safe for concurrent use.
type Verifier struct {
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	methods []string // the pinned algorithms, for error messages
	maxTTL  time.Duration
	leeway  time.Duration
}

// NewVerifier builds a Verifier. The accepted algorithm is pinned (HS256 for
// a secret), "exp" is required, "iat" is checked when present, and "none"
// is never accepted.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.MaxTTL < 0 || cfg.Leeway < 0 {
		return nil, errors.New("jwt: leeway and maximum lifetime must not be negative")
	}
	opts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v := &Verifier{maxTTL: cfg.MaxTTL, leeway: cfg.Leeway}
	switch {
	case cfg.Keys != nil:
		methods := cfg.Keys.Methods()
		if len(methods) == 0 {
			return nil, errors.New("jwt: the key source offers no signing algorithm")
		}
		for _, m := range methods {
			// A key source is for asymmetric keys; letting it enable HMAC or
			// "none" would reopen the key-confusion and unsigned-token holes.
			if !slices.Contains(jwksAlgs, m) {
				return nil, fmt.Errorf("jwt: key source algorithm %q is not allowed (only %s)", m, strings.Join(jwksAlgs, ", "))
			}
		}
		opts = append(opts, jwt.WithValidMethods(methods))
		v.keyFunc = cfg.Keys.Key
		v.methods = methods
	case len(cfg.Secret) >= 16:
		v.methods = []string{jwt.SigningMethodHS256.Alg()}
		opts = append(opts, jwt.WithValidMethods(v.methods))
		secret := cfg.Secret
		v.keyFunc = func(*jwt.Token) (any, error) { return secret, nil }
	default:
		return nil, errors.New("jwt: a secret of at least 16 bytes (or a JWKS) is required")
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Verify parses and checks a token. Any failure is an ErrUnauthorized
// *metric.Error with a reason fit for the client.
func (v *Verifier) Verify(token string) (*Claims, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, metric.Errorf(metric.ErrUnauthorized, "missing token")
	}
	if duplicateHeaderName(token) {
		return nil, metric.Errorf(metric.ErrUnauthorized, "invalid token: malformed header: duplicate name (alg, kid… may appear only once)")
	}
	var c Claims
	if tok, err := v.parser.ParseWithClaims(token, &c, v.keyFunc); err != nil {
		// golang-jwt reports a disallowed algorithm as a bad signature;
		// say what is wrong so whoever minted the token can fix it.
		if tok != nil && tok.Method != nil && !slices.Contains(v.methods, tok.Method.Alg()) {
			return nil, metric.Errorf(metric.ErrUnauthorized, "invalid token: algorithm %s not allowed (want %s)", tok.Method.Alg(), strings.Join(v.methods, " or "))
		}
		return nil, metric.Errorf(metric.ErrUnauthorized, "invalid token: %s", tokenReason(err))
	}
	if c.Servers == nil {
		return nil, metric.Errorf(metric.ErrUnauthorized, "invalid token: no \"servers\" claim")
	}
	if v.maxTTL > 0 {
		// exp is required, so the parser has already refused a token without it.
		lifetime, limit := time.Until(c.ExpiresAt.Time), v.maxTTL+v.leeway
		if c.IssuedAt != nil {
			lifetime, limit = c.ExpiresAt.Sub(c.IssuedAt.Time), v.maxTTL
		}
		if lifetime > limit {
			return nil, metric.Errorf(metric.ErrUnauthorized, "invalid token: lifetime %s is longer than the maximum %s; mint a shorter-lived token", lifetime.Truncate(time.Second), metric.FormatDuration(v.maxTTL))
		}
	}
	return &c, nil
}

// duplicateHeaderName reports whether the token's JOSE header names a
// member twice. golang-jwt decodes the header with encoding/json, where the
// last "alg" or "kid" wins; RFC 7515 (4) lets a parser refuse such a header,
// and refusing it means no other reader of the token can see another
// algorithm or key than we do. A header that does not decode at all is
// left to the parser, which reports it as malformed.
func duplicateHeaderName(token string) bool {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(head, "="))
	if err != nil {
		return false
	}
	var members map[string]jsontext.Value
	return errors.Is(jsonv2.Unmarshal(b, &members), jsontext.ErrDuplicateName)
}

func tokenReason(err error) string {
	var ce *claimsError
	if errors.As(err, &ce) {
		return "malformed claims: " + ce.msg
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The library's message names the claim ("iss claim is required").
		for _, claim := range []string{"exp", "iss", "aud"} {
			if strings.Contains(err.Error(), claim+" claim is required") {
				return "missing required claim " + claim
			}
		}
		return "missing required claim"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "bad signature"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unverifiable (algorithm not allowed or unknown key)"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "issued in the future (iat is ahead of this server's clock)"
	default:
		return "rejected"
	}
}

// BearerToken extracts the token from an "Authorization: Bearer …" value
// (the scheme is case-insensitive); "" when absent or of another scheme.
func BearerToken(header string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// IssueToken mints an HS256 user token for servers valid for ttl.
func IssueToken(secret []byte, servers []string, ttl time.Duration, issuer, audience string, now time.Time) (string, error) {
	return issueToken(secret, servers, "", ttl, issuer, audience, now)
}

// issueToken mints an HS256 user token with a scope claim (normalized
// space-separated; empty for none), checked by its callers.
func issueToken(secret []byte, servers []string, scope string, ttl time.Duration, issuer, audience string, now time.Time) (string, error) {
	if len(secret) < 16 {
		return "", errors.New("jwt secret must be at least 16 bytes")
	}
	if len(servers) == 0 {
		return "", errors.New("a token needs at least one server (or \"*\")")
	}
	if ttl <= 0 {
		return "", errors.New("ttl must be positive")
	}
	c := Claims{Servers: servers, Scope: scope, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   "vitals-user",
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		Issuer:    issuer,
	}}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// NewSecret returns a random 32-byte secret as hex, for localdev and
// first-time setup.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
