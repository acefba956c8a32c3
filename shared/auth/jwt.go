package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
	// Leeway tolerates clock skew on exp/nbf/iat.
	Leeway time.Duration
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
}

// NewVerifier builds a Verifier. The accepted algorithm is pinned (HS256 for
// a secret), "exp" is required, and "none" is never accepted.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	opts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v := &Verifier{}
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
	return &c, nil
}

func tokenReason(err error) string {
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
	if len(secret) < 16 {
		return "", errors.New("jwt secret must be at least 16 bytes")
	}
	if len(servers) == 0 {
		return "", errors.New("a token needs at least one server (or \"*\")")
	}
	if ttl <= 0 {
		return "", errors.New("ttl must be positive")
	}
	c := Claims{Servers: servers, RegisteredClaims: jwt.RegisteredClaims{
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
