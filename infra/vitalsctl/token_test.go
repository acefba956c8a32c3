package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/auth"
)

const testSecret = "test-secret-test-secret-test-secret"

// cli runs vitalsctl with env as its whole environment.
func cli(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func wantUsage(t *testing.T, err error, msg string) {
	t.Helper()
	var ue *usageError
	if !errors.As(err, &ue) {
		t.Fatalf("error = %v, want a usage error (exit 2)", err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not mention %q", err, msg)
	}
	if code := exitCode(err, &bytes.Buffer{}); code != exitUsage {
		t.Fatalf("exit code %d, want %d", code, exitUsage)
	}
}

func wantFailure(t *testing.T, err error, msg string) {
	t.Helper()
	var ue *usageError
	if err == nil || errors.As(err, &ue) {
		t.Fatalf("error = %v, want an operational failure (exit 1)", err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not mention %q", err, msg)
	}
	if code := exitCode(err, &bytes.Buffer{}); code != exitFail {
		t.Fatalf("exit code %d, want %d", code, exitFail)
	}
}

func verifyWith(t *testing.T, cfg auth.VerifierConfig, token string) *auth.Claims {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(token)
	if err != nil {
		t.Fatalf("issued token does not verify: %v", err)
	}
	return c
}

func TestHelpAndUsage(t *testing.T) {
	out, _, err := cli(t, nil, "help")
	if err != nil || !strings.Contains(out, "vitalsctl host add <serverId>") || !strings.Contains(out, "VITALS_JWT_SECRET") {
		t.Fatalf("help: %v\n%s", err, out)
	}
	if out2, _, _ := cli(t, nil, "--help"); out2 != out {
		t.Error("--help differs from help")
	}
	_, errOut, err := cli(t, nil)
	wantUsage(t, err, "no command")
	if !strings.Contains(errOut, "Usage:") {
		t.Error("no usage text on stderr without a command")
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"host"}, "host needs a subcommand"},
		{[]string{"host", "delete", "x"}, `unknown host subcommand "delete"`},
		{[]string{"token"}, "token needs a subcommand"},
		{[]string{"token", "mint"}, `unknown token subcommand "mint"`},
		{[]string{"token", "issue", "--servers", "a", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"token", "issue", "-h"}, "see 'vitalsctl help'"},
	} {
		_, _, err := cli(t, map[string]string{"VITALS_JWT_SECRET": testSecret}, tc.args...)
		wantUsage(t, err, tc.msg)
	}
}

func TestExitCode(t *testing.T) {
	var buf bytes.Buffer
	if exitCode(nil, &buf) != exitOK || buf.Len() != 0 {
		t.Error("nil error")
	}
	if exitCode(errors.New("boom"), &buf) != exitFail || !strings.Contains(buf.String(), "vitalsctl: boom") {
		t.Errorf("failure: %q", buf.String())
	}
	buf.Reset()
	if exitCode(usagef("bad flag"), &buf) != exitUsage || !strings.Contains(buf.String(), "vitalsctl help") {
		t.Errorf("usage: %q", buf.String())
	}
}

func TestTokenIssue(t *testing.T) {
	env := map[string]string{"VITALS_JWT_SECRET": testSecret}
	out, errOut, err := cli(t, env, "token", "issue", "--servers", "web-1, db-1,web-1", "--ttl", "7d")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("stdout is not exactly one token line: %q", out)
	}
	c := verifyWith(t, auth.VerifierConfig{Secret: []byte(testSecret)}, tok)
	if !slices.Equal(c.Servers, []string{"web-1", "db-1"}) {
		t.Errorf("servers = %q", c.Servers)
	}
	if left := time.Until(c.ExpiresAt.Time); left < 7*24*time.Hour-time.Minute || left > 7*24*time.Hour {
		t.Errorf("expires in %v, want 7d", left)
	}
	if !strings.Contains(errOut, "web-1,db-1") || !strings.Contains(errOut, "valid 7d") || strings.Contains(errOut, testSecret) {
		t.Errorf("stderr = %q", errOut)
	}

	// '*' and the default ttl.
	out, _, err = cli(t, env, "token", "issue", "--servers=*")
	if err != nil {
		t.Fatal(err)
	}
	c = verifyWith(t, auth.VerifierConfig{Secret: []byte(testSecret)}, strings.TrimSpace(out))
	if !c.CanRead("anything") || time.Until(c.ExpiresAt.Time) > 24*time.Hour {
		t.Errorf("claims = %+v", c)
	}
}

func TestTokenIssueIssuerAudience(t *testing.T) {
	env := map[string]string{"VITALS_JWT_SECRET": testSecret, "VITALS_JWT_ISSUER": "env-iss", "VITALS_JWT_AUDIENCE": "env-aud"}
	out, _, err := cli(t, env, "token", "issue", "--servers", "a")
	if err != nil {
		t.Fatal(err)
	}
	verifyWith(t, auth.VerifierConfig{Secret: []byte(testSecret), Issuer: "env-iss", Audience: "env-aud"}, strings.TrimSpace(out))

	// Flags override the environment.
	out, _, err = cli(t, env, "token", "issue", "--servers", "a", "--issuer", "flag-iss", "--audience", "flag-aud")
	if err != nil {
		t.Fatal(err)
	}
	verifyWith(t, auth.VerifierConfig{Secret: []byte(testSecret), Issuer: "flag-iss", Audience: "flag-aud"}, strings.TrimSpace(out))

	// --secret-file overrides VITALS_JWT_SECRET; its trailing newline is not
	// part of the secret.
	other := "another-secret-another-secret"
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(other+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, env, "token", "issue", "--servers", "a", "--secret-file", file)
	if err != nil {
		t.Fatal(err)
	}
	verifyWith(t, auth.VerifierConfig{Secret: []byte(other), Issuer: "env-iss", Audience: "env-aud"}, strings.TrimSpace(out))
}

func TestTokenIssueErrors(t *testing.T) {
	env := map[string]string{"VITALS_JWT_SECRET": testSecret}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{}, "--servers is required"},
		{[]string{"--servers", " , "}, "--servers is required"},
		{[]string{"--servers", "*,web-1"}, "give it alone"},
		{[]string{"--servers", "web 1"}, `"web 1" is not a server id`},
		{[]string{"--servers", "a", "--ttl", "forever"}, "--ttl"},
		{[]string{"--servers", "a", "--ttl", "-1h"}, "--ttl"},
		{[]string{"--servers", "a", "web-2"}, `unexpected argument "web-2"`},
	} {
		_, _, err := cli(t, env, append([]string{"token", "issue"}, tc.args...)...)
		wantUsage(t, err, tc.msg)
	}
	_, _, err := cli(t, nil, "token", "issue", "--servers", "a")
	wantFailure(t, err, "set VITALS_JWT_SECRET")
	_, _, err = cli(t, map[string]string{"VITALS_JWT_SECRET": "short"}, "token", "issue", "--servers", "a")
	wantFailure(t, err, "at least 16")
	_, _, err = cli(t, env, "token", "issue", "--servers", "a", "--secret-file", filepath.Join(t.TempDir(), "missing"))
	wantFailure(t, err, "read --secret-file")
}

func TestTokenVerify(t *testing.T) {
	env := map[string]string{"VITALS_JWT_SECRET": testSecret}
	issued, err := auth.IssueToken([]byte(testSecret), []string{"web-1"}, time.Hour, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	report := func(out string) tokenReport {
		t.Helper()
		var r tokenReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("output is not a JSON report: %v\n%s", err, out)
		}
		return r
	}

	out, _, err := cli(t, env, "token", "verify", issued)
	if err != nil {
		t.Fatal(err)
	}
	r := report(out)
	if !r.Valid || !slices.Equal(r.Servers, []string{"web-1"}) || r.Algorithm != "HS256" || r.Subject != "vitals-user" || r.ExpiresAt.IsZero() || r.ExpiresIn == "" || strings.HasPrefix(r.ExpiresIn, "expired") {
		t.Errorf("report = %+v", r)
	}

	// Pasted with its header, or piped in.
	if _, _, err := cli(t, env, "token", "verify", "Bearer "+issued); err != nil {
		t.Errorf("Bearer-prefixed: %v", err)
	}
	stdin = strings.NewReader(issued + "\n")
	t.Cleanup(func() { stdin = os.Stdin })
	if _, _, err := cli(t, env, "token", "verify", "-"); err != nil {
		t.Errorf("from stdin: %v", err)
	}

	// A refused token still shows its claims, so the reason can be seen.
	expired, err := auth.IssueToken([]byte(testSecret), []string{"db-1"}, time.Hour, "", "", time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, env, "token", "verify", expired)
	wantFailure(t, err, "expired")
	r = report(out)
	if r.Valid || !strings.Contains(r.Error, "expired") || !slices.Equal(r.Servers, []string{"db-1"}) || !strings.HasPrefix(r.ExpiresIn, "expired 1h") {
		t.Errorf("expired report = %+v", r)
	}
	out, _, err = cli(t, map[string]string{"VITALS_JWT_SECRET": "some-other-secret-entirely"}, "token", "verify", issued)
	wantFailure(t, err, "bad signature")
	if r := report(out); r.Valid || !slices.Equal(r.Servers, []string{"web-1"}) {
		t.Errorf("wrong-secret report = %+v", r)
	}
	out, _, err = cli(t, env, "token", "verify", "not-a-token")
	wantFailure(t, err, "malformed")
	if r := report(out); r.Valid {
		t.Errorf("garbage report = %+v", r)
	}
	// Issuer/audience required when configured.
	_, _, err = cli(t, map[string]string{"VITALS_JWT_SECRET": testSecret, "VITALS_JWT_ISSUER": "vitals"}, "token", "verify", issued)
	wantFailure(t, err, "iss")

	_, _, err = cli(t, env, "token", "verify")
	wantUsage(t, err, "exactly one token")
	_, _, err = cli(t, env, "token", "verify", issued, issued)
	wantUsage(t, err, "exactly one token")
	_, _, err = cli(t, nil, "token", "verify", issued)
	wantFailure(t, err, "no key")
}

func TestTokenVerifyJWKS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
			"kty": "EC", "crv": "P-256", "kid": "k1", "x": b64(pub[1:33]), "y": b64(pub[33:]),
		}}})
	}))
	defer srv.Close()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"servers": []string{"*"}, "exp": time.Now().Add(time.Hour).Unix(), "sub": "alice"})
	tok.Header["kid"] = "k1"
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, map[string]string{"VITALS_JWT_JWKS_URL": srv.URL}, "token", "verify", signed)
	if err != nil {
		t.Fatalf("verify via JWKS: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"kid": "k1"`) || !strings.Contains(out, `"sub": "alice"`) {
		t.Errorf("report = %s", out)
	}
	// An HS256 token is refused when a JWKS is configured, whatever the secret.
	hs, _ := auth.IssueToken([]byte(testSecret), []string{"*"}, time.Hour, "", "", time.Now())
	_, _, err = cli(t, map[string]string{"VITALS_JWT_SECRET": testSecret}, "token", "verify", "--jwks-url", srv.URL, hs)
	wantFailure(t, err, "not allowed")
}
