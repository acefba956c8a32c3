package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// stdin is where `token verify -` reads the token; a variable so tests can
// feed it.
var stdin io.Reader = os.Stdin

// now is the clock tokens are issued and checked against.
var now = time.Now

// defaultTTL is how long an issued token lives unless --ttl says otherwise.
const defaultTTL = "24h"

func tokenIssue(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("token issue")
	servers := fs.String("servers", "", "")
	ttl := fs.String("ttl", defaultTTL, "")
	issuer := fs.String("issuer", "", "")
	audience := fs.String("audience", "", "")
	secretFile := fs.String("secret-file", "", "")
	scope := fs.String("scope", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("token issue: unexpected argument %q (servers go in --servers)", pos[0])
	}
	for _, sc := range strings.Fields(strings.ReplaceAll(*scope, ",", " ")) {
		if !slices.Contains(auth.Scopes, sc) {
			return usagef("token issue: --scope: %q is not a scope (known: %s)", sc, strings.Join(auth.Scopes, " "))
		}
	}
	list, err := parseServers(*servers)
	if err != nil {
		return err
	}
	d, err := metric.ParseDuration(*ttl)
	if err != nil {
		return usagef("token issue: --ttl: want a duration like 1h, 24h or 30d, got %q", *ttl)
	}
	st := newSettings(fs, getenv)
	secret, err := loadSecret(st, *secretFile)
	if err != nil {
		return err
	}
	if secret == nil {
		return errors.New("token issue: no secret: set VITALS_JWT_SECRET (or pass --secret-file) to the secret the functions use")
	}
	iss := st.get("issuer", *issuer, "VITALS_JWT_ISSUER", "")
	aud := st.get("audience", *audience, "VITALS_JWT_AUDIENCE", "")
	t := now()
	tok, err := auth.IssueScopedToken(secret, list, strings.Join(strings.Fields(strings.ReplaceAll(*scope, ",", " ")), " "), d, iss, aud, t)
	if err != nil {
		return fmt.Errorf("token issue: %w", err)
	}
	// The token alone goes to stdout so `TOKEN=$(vitalsctl token issue …)`
	// works; the summary is for the human at the terminal.
	if _, err := fmt.Fprintln(stdout, tok); err != nil {
		return fmt.Errorf("token issue: write the token: %w", err)
	}
	fmt.Fprintf(stderr, "Token for servers %s, valid %s (until %s).\n", strings.Join(list, ","), metric.FormatDuration(d), t.Add(d).UTC().Format(time.RFC3339))
	if *scope != "" {
		fmt.Fprintf(stderr, "Scope: %s\n", strings.Join(strings.Fields(strings.ReplaceAll(*scope, ",", " ")), " "))
	}
	return nil
}

// parseServers turns --servers "a,b" or "*" into the servers claim.
func parseServers(s string) ([]string, error) {
	var out []string
	for _, id := range strings.Split(s, ",") {
		id = strings.TrimSpace(id)
		if id == "" || slices.Contains(out, id) {
			continue
		}
		if id != "*" && !metric.ValidServerID(id) {
			return nil, usagef("token issue: --servers: %q is not a server id (letters, digits, '.', '_', '-')", id)
		}
		out = append(out, id)
	}
	switch {
	case len(out) == 0:
		return nil, usagef("token issue: --servers is required: a comma-separated list of server ids, or '*' for all")
	case len(out) > 1 && slices.Contains(out, "*"):
		return nil, usagef("token issue: --servers: '*' already means every server; give it alone")
	}
	return out, nil
}

// loadSecret returns the HS256 secret from --secret-file or
// VITALS_JWT_SECRET, nil when neither is set. The secret is used as the
// exact bytes given (a trailing newline in the file excepted), the same as
// the functions do, so tokens verify there.
func loadSecret(st settings, file string) ([]byte, error) {
	var secret string
	if st.set["secret-file"] {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read --secret-file: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
		if secret == "" {
			return nil, fmt.Errorf("--secret-file %s is empty", file)
		}
	} else {
		secret = st.getenv("VITALS_JWT_SECRET")
	}
	if secret == "" {
		return nil, nil
	}
	if len(secret) < 16 {
		return nil, fmt.Errorf("the JWT secret is %d bytes; it must be at least 16 (make one with: openssl rand -hex 32)", len(secret))
	}
	return []byte(secret), nil
}

// tokenReport is what `token verify` prints.
type tokenReport struct {
	Valid     bool      `json:"valid"`
	Error     string    `json:"error,omitempty"`
	Algorithm string    `json:"alg,omitempty"`
	KeyID     string    `json:"kid,omitempty"`
	Servers   []string  `json:"servers,omitempty"`
	Subject   string    `json:"sub,omitempty"`
	Issuer    string    `json:"iss,omitempty"`
	Audience  []string  `json:"aud,omitempty"`
	IssuedAt  time.Time `json:"iat,omitzero"`
	NotBefore time.Time `json:"nbf,omitzero"`
	ExpiresAt time.Time `json:"exp,omitzero"`
	ExpiresIn string    `json:"expiresIn,omitempty"`
}

func tokenVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("token verify")
	issuer := fs.String("issuer", "", "")
	audience := fs.String("audience", "", "")
	secretFile := fs.String("secret-file", "", "")
	jwksURL := fs.String("jwks-url", "", "")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("token verify: want exactly one token (or '-' to read it from stdin)")
	}
	raw := pos[0]
	if raw == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
		if err != nil {
			return fmt.Errorf("token verify: read stdin: %w", err)
		}
		raw = string(b)
	}
	raw = strings.TrimSpace(raw)
	if tok := auth.BearerToken(raw); tok != "" { // pasted with its header
		raw = tok
	}

	st := newSettings(fs, getenv)
	cfg := auth.VerifierConfig{
		Issuer:   st.get("issuer", *issuer, "VITALS_JWT_ISSUER", ""),
		Audience: st.get("audience", *audience, "VITALS_JWT_AUDIENCE", ""),
	}
	if u := st.get("jwks-url", *jwksURL, "VITALS_JWT_JWKS_URL", ""); u != "" {
		logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		keys, err := auth.NewJWKS(ctx, u, nil, logger)
		if err != nil {
			return fmt.Errorf("token verify: %w", err)
		}
		cfg.Keys = keys
	} else {
		if cfg.Secret, err = loadSecret(st, *secretFile); err != nil {
			return err
		}
		if cfg.Secret == nil {
			return errors.New("token verify: no key: set VITALS_JWT_SECRET (or --secret-file), or VITALS_JWT_JWKS_URL (or --jwks-url)")
		}
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		return fmt.Errorf("token verify: %w", err)
	}

	// Show the claims whether or not the token is good: "why is this token
	// refused" is the usual question, and its exp or aud is the answer.
	rep := describe(raw)
	claims, verr := v.Verify(raw)
	if verr == nil {
		rep.Valid = true
		rep.Servers = claims.Servers
	} else {
		rep.Error = verr.Error()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if verr != nil {
		return fmt.Errorf("token verify: %w", verr)
	}
	return nil
}

// describe decodes a token's header and claims without checking anything,
// for display only.
func describe(raw string) tokenReport {
	var c auth.Claims
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &c)
	if err != nil {
		return tokenReport{}
	}
	rep := tokenReport{Servers: c.Servers, Subject: c.Subject, Issuer: c.Issuer, Audience: c.Audience}
	if alg, ok := tok.Header["alg"].(string); ok {
		rep.Algorithm = alg
	}
	if kid, ok := tok.Header["kid"].(string); ok {
		rep.KeyID = kid
	}
	if c.IssuedAt != nil {
		rep.IssuedAt = c.IssuedAt.UTC()
	}
	if c.NotBefore != nil {
		rep.NotBefore = c.NotBefore.UTC()
	}
	if c.ExpiresAt != nil {
		rep.ExpiresAt = c.ExpiresAt.UTC()
		if left := c.ExpiresAt.Sub(now()); left > 0 {
			rep.ExpiresIn = left.Round(time.Second).String()
		} else {
			rep.ExpiresIn = "expired " + (-left).Round(time.Second).String() + " ago"
		}
	}
	return rep
}
