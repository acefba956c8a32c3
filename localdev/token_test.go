package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/auth"
)

// TestTokenCommand: `localdev token` mints a token for exactly the servers
// and lifetime asked for, and refuses what it cannot honour instead of
// printing a token for every server.
func TestTokenCommand(t *testing.T) {
	const secret = "token-test-secret-0123456789abcdef"
	env := map[string]string{"VITALS_JWT_SECRET": secret, "VITALS_LOCALDEV_DIR": t.TempDir()}
	getenv := func(k string) string { return env[k] }
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		servers []string
		ttl     time.Duration
	}{
		{nil, []string{"*"}, 24 * time.Hour},
		{[]string{"--servers", "web-1"}, []string{"web-1"}, 24 * time.Hour},
		{[]string{"--servers=web-1,db-1", "--ttl", "1h"}, []string{"web-1", "db-1"}, time.Hour},
		{[]string{"-servers", " web-1 , web-1 ,", "-ttl=7d"}, []string{"web-1"}, 7 * 24 * time.Hour},
		{[]string{"--servers", "*"}, []string{"*"}, 24 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), append([]string{"token"}, tc.args...), getenv, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			tok := strings.TrimSpace(out.String())
			c, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(%q): %v", tok, err)
			}
			if !slices.Equal(c.Servers, tc.servers) {
				t.Errorf("servers = %q, want %q", c.Servers, tc.servers)
			}
			if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != tc.ttl {
				t.Errorf("lifetime = %v, want %v", got, tc.ttl)
			}
		})
	}
	for _, args := range [][]string{
		{"--servers", ""},
		{"--servers", ","},
		{"--servers", "../etc"},
		{"--servers", "web-1,*"},
		{"--ttl", "soon"},
		{"--ttl", "-1h"},
		{"web-1"},
		{"--servers", "web-1", "extra"},
		{"--server", "web-1"},
	} {
		t.Run("refuses "+strings.Join(args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"token"}, args...), getenv, &out, io.Discard)
			if err == nil {
				t.Fatalf("no error; printed %q", out.String())
			}
			if out.Len() != 0 {
				t.Errorf("printed a token with an error: %q", out.String())
			}
		})
	}
	// The parser's own claims check, so the test does not trust Verify alone.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--servers", "web-1"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(strings.TrimSpace(out.String()), claims); err != nil {
		t.Fatal(err)
	}
	if s, _ := claims["servers"].([]any); len(s) != 1 || s[0] != "web-1" {
		t.Errorf("servers claim = %v, want [web-1]", claims["servers"])
	}
}
