package config_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/config"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.Load(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "" || c.LogFormat != "json" || c.LogLevel != slog.LevelInfo || c.MaxBodyBytes != 0 {
		t.Fatalf("%+v", c)
	}
	sc, err := c.StoreConfig()
	if err != nil || sc.URL != "redis://127.0.0.1:6379" || sc.Prefix != "vitals:" || len(sc.Tiers) != 4 {
		t.Fatalf("%+v %v", sc, err)
	}
	if _, err := c.Verifier(context.Background()); err == nil || !strings.Contains(err.Error(), "VITALS_JWT_SECRET") {
		t.Fatalf("verifier without a secret: %v", err)
	}
}

func TestAllSet(t *testing.T) {
	c, err := config.Load(envOf(map[string]string{
		"VITALS_ADDR": "127.0.0.1:9000", "VITALS_REDIS_URL": "redis://:pw@10.0.0.1:6380/2", "VITALS_REDIS_PREFIX": "prod:",
		"VITALS_TIERS": "10s:1h,1m:6h,5m:24h,30m:7d,6h:90d", "VITALS_PERIODS": "1h,6h,24h,7d,90d",
		"VITALS_JWT_SECRET": "0123456789abcdef0123", "VITALS_JWT_ISSUER": "iss", "VITALS_JWT_AUDIENCE": "aud",
		"VITALS_LOG_FORMAT": "text", "VITALS_LOG_LEVEL": "debug", "VITALS_MAX_BODY_BYTES": "2048",
		"VITALS_MAX_INSTANCES_PER_SERVER": "1000", "VITALS_MAX_SAMPLE_AGE": "30d",
	}))
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := c.StoreConfig()
	if c.Addr != "127.0.0.1:9000" || sc.URL != "redis://:pw@10.0.0.1:6380/2" || sc.Prefix != "prod:" || len(sc.Tiers) != 5 ||
		len(sc.Periods) != 5 || c.MaxBodyBytes != 2048 || c.LogLevel != slog.LevelDebug || sc.MaxInstancesPerServer != 1000 ||
		sc.MaxSampleAge != 30*24*time.Hour {
		t.Fatalf("%+v %+v", c, sc)
	}
	// Secrets never print.
	for _, s := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c)} {
		if strings.Contains(s, "0123456789abcdef0123") || strings.Contains(s, ":pw@") {
			t.Fatalf("secret printed: %s", s)
		}
	}
	var logs bytes.Buffer
	l := c.Logger(&logs)
	l.Debug("cfg", "config", c, "secret", c.JWTSecret)
	if !strings.Contains(logs.String(), "level=DEBUG") || strings.Contains(logs.String(), "0123456789abcdef0123") {
		t.Fatalf("text logger: %s", logs.String())
	}
	v, err := c.Verifier(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := auth.IssueToken([]byte("0123456789abcdef0123"), []string{"*"}, time.Hour, "iss", "aud", time.Now())
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	wrongAud, _ := auth.IssueToken([]byte("0123456789abcdef0123"), []string{"*"}, time.Hour, "iss", "other", time.Now())
	if _, err := v.Verify(wrongAud); err == nil {
		t.Fatal("audience not checked")
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"VITALS_REDIS_URL": "http://:topsecret@x"}, "VITALS_REDIS_URL"},
		// Unencoded characters in a password: the hint, never the value.
		{map[string]string{"VITALS_REDIS_URL": "redis://:top#secret@x:6379"}, "percent-encode"},
		{map[string]string{"VITALS_REDIS_URL": "redis://:top?secret@x:6379"}, "percent-encode"},
		{map[string]string{"VITALS_REDIS_URL": "redis://:top%secret@x:6379"}, "percent-encode"},
		{map[string]string{"VITALS_REDIS_PREFIX": "a{b}"}, "VITALS_REDIS_PREFIX"},
		{map[string]string{"VITALS_TIERS": "10s"}, "VITALS_TIERS"},
		{map[string]string{"VITALS_PERIODS": "1x"}, "VITALS_PERIODS"},
		{map[string]string{"VITALS_JWT_SECRET": "topsecret"}, "at least 16 bytes"},
		{map[string]string{"VITALS_JWT_SECRET": "topsecret-topsecret", "VITALS_JWT_JWKS_URL": "https://idp/jwks"}, "not both"},
		{map[string]string{"VITALS_JWT_JWKS_URL": "ftp://x"}, "http(s) URL"},
		{map[string]string{"VITALS_LOG_FORMAT": "xml"}, "json or text"},
		{map[string]string{"VITALS_LOG_LEVEL": "loud"}, "VITALS_LOG_LEVEL"},
		{map[string]string{"VITALS_MAX_BODY_BYTES": "-1"}, "VITALS_MAX_BODY_BYTES"},
		{map[string]string{"VITALS_MAX_BODY_BYTES": "1MB"}, "VITALS_MAX_BODY_BYTES"},
		{map[string]string{"VITALS_MAX_INSTANCES_PER_SERVER": "0"}, "VITALS_MAX_INSTANCES_PER_SERVER"},
		{map[string]string{"VITALS_MAX_SAMPLE_AGE": "30d"}, "VITALS_MAX_SAMPLE_AGE: max sample age 30d is longer than the longest tier's retention 7d"},
		{map[string]string{"VITALS_MAX_SAMPLE_AGE": "10m"}, "under 1h"},
		{map[string]string{"VITALS_MAX_SAMPLE_AGE": "soon"}, "VITALS_MAX_SAMPLE_AGE"},
	}
	for _, tc := range tests {
		_, err := config.Load(envOf(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.env, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") {
			t.Errorf("secret in error: %v", err)
		}
	}
	// Several problems are reported together.
	_, err := config.Load(envOf(map[string]string{"VITALS_LOG_FORMAT": "xml", "VITALS_LOG_LEVEL": "loud"}))
	if err == nil || !strings.Contains(err.Error(), "VITALS_LOG_FORMAT") || !strings.Contains(err.Error(), "VITALS_LOG_LEVEL") {
		t.Fatal(err)
	}
}

func TestClusterURLList(t *testing.T) {
	c, err := config.Load(envOf(map[string]string{"VITALS_REDIS_URL": "redis://a:7000,redis://b:7001"}))
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := c.StoreConfig()
	if sc.URL != "redis://a:7000,redis://b:7001" {
		t.Fatal(sc.URL)
	}
}

// TestJWTMaxTTL: VITALS_JWT_MAX_TTL reaches the verifier; unset, any
// lifetime is accepted.
func TestJWTMaxTTL(t *testing.T) {
	const secret = "0123456789abcdef0123"
	long, _ := auth.IssueToken([]byte(secret), []string{"*"}, 30*24*time.Hour, "", "", time.Now())
	short, _ := auth.IssueToken([]byte(secret), []string{"*"}, time.Hour, "", "", time.Now())
	for _, tc := range []struct {
		maxTTL  string
		want    time.Duration
		longErr bool
	}{
		{"", 0, false},
		{"7d", 7 * 24 * time.Hour, true},
		{"24h", 24 * time.Hour, true},
		{"90d", 90 * 24 * time.Hour, false},
	} {
		c, err := config.Load(envOf(map[string]string{"VITALS_JWT_SECRET": secret, "VITALS_JWT_MAX_TTL": tc.maxTTL}))
		if err != nil {
			t.Fatal(err)
		}
		if c.JWTMaxTTL != tc.want {
			t.Errorf("%q: JWTMaxTTL = %v, want %v", tc.maxTTL, c.JWTMaxTTL, tc.want)
		}
		v, err := c.Verifier(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(short); err != nil {
			t.Errorf("%q: 1 h token: %v", tc.maxTTL, err)
		}
		if _, err := v.Verify(long); (err != nil) != tc.longErr {
			t.Errorf("%q: 30 d token: %v, want refused = %v", tc.maxTTL, err, tc.longErr)
		}
	}
	for _, bad := range []string{"soon", "0", "-1h", "0d"} {
		_, err := config.Load(envOf(map[string]string{"VITALS_JWT_MAX_TTL": bad}))
		if err == nil || !strings.Contains(err.Error(), "VITALS_JWT_MAX_TTL") {
			t.Errorf("%q: %v, want an error naming VITALS_JWT_MAX_TTL", bad, err)
		}
	}
}
