package auth_test

import (
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
)

func TestScopeClaim(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.IssueScopedToken(secret, []string{"*"}, "alerts:write", time.Hour, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil || !c.HasScope(auth.ScopeAlertsWrite) || c.CheckScope(auth.ScopeAlertsWrite) != nil {
		t.Fatalf("scoped token: %+v %v", c, err)
	}
	plain, _ := auth.IssueToken(secret, []string{"*"}, time.Hour, "", "", time.Now())
	c, _ = v.Verify(plain)
	if c.HasScope(auth.ScopeAlertsWrite) || c.CheckScope(auth.ScopeAlertsWrite) == nil {
		t.Fatal("token without scope has alerts:write")
	}
	if (&auth.Claims{Scope: "read ALERTS:WRITE alerts:writer"}).HasScope(auth.ScopeAlertsWrite) {
		t.Fatal("scope matched loosely")
	}
	if _, err := auth.IssueScopedToken(secret, []string{"*"}, "root", time.Hour, "", "", time.Now()); err == nil {
		t.Fatal("unknown scope issued")
	}
}
