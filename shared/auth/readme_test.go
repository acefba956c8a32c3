package auth_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
)

// TestReadmeShellToken runs the README's "POSIX shell + openssl" token
// recipe and verifies what it mints, so the claims rules (RFC 7519 names
// and types, iat, the lifetime cap) never refuse a token the README tells
// people to make.
func TestReadmeShellToken(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n# POSIX shell \\+ openssl\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no POSIX shell + openssl token recipe")
	}
	cmd := exec.Command("sh", "-eu", "-c", string(m[1]))
	cmd.Env = append(os.Environ(), "VITALS_JWT_SECRET="+string(testSecret))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("recipe: %v", err)
	}
	v := newVerifier(t, auth.VerifierConfig{Secret: testSecret, MaxTTL: 24 * time.Hour})
	c, err := v.Verify(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("the README's token %q: %v", out, err)
	}
	if !slices.Equal(c.Servers, []string{"web-1"}) {
		t.Errorf("servers = %q", c.Servers)
	}
}
