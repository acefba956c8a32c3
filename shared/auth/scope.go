package auth

import (
	"fmt"
	"slices"
	"strings"
	"time"

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
	return issueToken(secret, servers, strings.Join(strings.Fields(scope), " "), ttl, issuer, audience, now)
}
