package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/metric"
)

// ScopeAlertsWrite lets a token change alert rules, channels and silences.
const ScopeAlertsWrite = "alerts:write"

// Scopes lists the scopes a token may carry; vitalsctl refuses others.
var Scopes = []string{ScopeAlertsWrite}

// HasScope reports whether the token's space-separated scope claim holds
// s (exactly: scopes are case-sensitive, as in RFC 8693).
func (c *Claims) HasScope(s string) bool {
	return slices.Contains(strings.Fields(c.Scope), s)
}

// CheckScope returns nil when the token has scope s, else ErrForbidden
// naming it.
func (c *Claims) CheckScope(s string) error {
	if c.HasScope(s) {
		return nil
	}
	return metric.Errorf(metric.ErrForbidden, "token lacks the scope %q (vitalsctl token issue --scope %s)", s, s)
}

// IssueScopedToken is IssueToken with a scope claim (space-separated;
// empty for none).
func IssueScopedToken(secret []byte, servers []string, scope string, ttl time.Duration, issuer, audience string, now time.Time) (string, error) {
	for _, s := range strings.Fields(scope) {
		if !slices.Contains(Scopes, s) {
			return "", fmt.Errorf("unknown scope %q (known: %s)", s, strings.Join(Scopes, " "))
		}
	}
	if scope == "" {
		return IssueToken(secret, servers, ttl, issuer, audience, now)
	}
	if len(secret) < 16 || len(servers) == 0 || ttl <= 0 {
		// IssueToken says which.
		_, err := IssueToken(secret, servers, ttl, issuer, audience, now)
		if err == nil {
			err = errors.New("invalid token parameters")
		}
		return "", err
	}
	c := Claims{Servers: servers, Scope: strings.Join(strings.Fields(scope), " "), RegisteredClaims: jwt.RegisteredClaims{
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
