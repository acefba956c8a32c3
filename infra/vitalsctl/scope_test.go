package main

import (
	"strings"
	"testing"

	"github.com/vitals-dev/vitals/shared/auth"
)

func TestTokenIssueScope(t *testing.T) {
	env := map[string]string{"VITALS_JWT_SECRET": testSecret}
	out, errOut, err := cli(t, env, "token", "issue", "--servers", "*", "--scope", "alerts:write")
	if err != nil {
		t.Fatal(err)
	}
	c := verifyWith(t, auth.VerifierConfig{Secret: []byte(testSecret)}, strings.TrimSpace(out))
	if !c.HasScope(auth.ScopeAlertsWrite) || !strings.Contains(errOut, "alerts:write") {
		t.Fatalf("claims %+v, stderr %q", c, errOut)
	}
	_, _, err = cli(t, env, "token", "issue", "--servers", "*", "--scope", "admin")
	wantUsage(t, err, "--scope")
}
