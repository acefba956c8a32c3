// Package config reads the VITALS_* environment shared by the functions and
// localdev into a typed Config, and builds what mains need from it: a
// logger, a token verifier and the store configuration. Only mains call it
// (with os.Getenv); libraries take the values they need as parameters.
package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// Secret is a configuration value that must never be printed: its String,
// GoString and LogValue are redacted, so a Config can be logged or shown
// with %+v safely.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret under %#v.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Config is the common configuration of Vitals' processes.
type Config struct {
	// Addr is the listen address outside Lambda (VITALS_ADDR); "" lets each
	// main pick its default.
	Addr string

	// RedisURL is a redis:// URL, or a comma-separated list of host:port
	// nodes for Redis Cluster (VITALS_REDIS_URL). It may hold a password.
	RedisURL    Secret
	RedisPrefix string
	// Tiers and Periods are nil when not configured (the store's defaults).
	Tiers   []redisstore.Tier
	Periods []metric.Period

	JWTSecret   Secret
	JWTJWKSURL  string
	JWTIssuer   string
	JWTAudience string
	// JWTMaxTTL is the longest token lifetime accepted
	// (VITALS_JWT_MAX_TTL); 0 accepts any.
	JWTMaxTTL time.Duration

	// LogFormat is "json" (default) or "text".
	LogFormat string
	LogLevel  slog.Level

	// MaxBodyBytes bounds an ingest body as sent; 0 means the handler's default.
	MaxBodyBytes int64
	// MaxInstancesPerServer bounds one server's live instances; 0 means the
	// store's default.
	MaxInstancesPerServer int
	// MaxSampleAge is the oldest sample ingest stores; 0 means the store's
	// default.
	MaxSampleAge time.Duration
}

// Load reads the configuration through getenv (os.Getenv in mains, a map in
// tests). Every problem found is reported at once, naming the variable but
// never echoing a secret's value.
func Load(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", k, fmt.Sprintf(format, args...)))
	}
	def := redisstore.DefaultConfig()
	c := Config{
		Addr:        get("VITALS_ADDR"),
		RedisURL:    Secret(def.URL),
		RedisPrefix: def.Prefix,
		JWTSecret:   Secret(get("VITALS_JWT_SECRET")),
		JWTJWKSURL:  get("VITALS_JWT_JWKS_URL"),
		JWTIssuer:   get("VITALS_JWT_ISSUER"),
		JWTAudience: get("VITALS_JWT_AUDIENCE"),
		LogFormat:   "json",
		LogLevel:    slog.LevelInfo,
	}
	if v := get("VITALS_REDIS_URL"); v != "" {
		if err := checkRedisURL(v); err != nil {
			bad("VITALS_REDIS_URL", "%v", err)
		}
		c.RedisURL = Secret(v)
	}
	if v, ok := lookup(getenv, "VITALS_REDIS_PREFIX"); ok {
		if strings.ContainsAny(v, "{} \t\n") {
			bad("VITALS_REDIS_PREFIX", "%q must not contain braces or spaces", v)
		}
		c.RedisPrefix = v
	}
	if v := get("VITALS_TIERS"); v != "" {
		t, err := redisstore.ParseTiers(v)
		if err != nil {
			bad("VITALS_TIERS", "%v (want e.g. 10s:1h,1m:6h,5m:24h,30m:7d)", err)
		}
		c.Tiers = t
	}
	if v := get("VITALS_PERIODS"); v != "" {
		p, err := redisstore.ParsePeriods(v)
		if err != nil {
			bad("VITALS_PERIODS", "%v (want e.g. 1h,6h,24h,7d,90d)", err)
		}
		c.Periods = p
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 16 {
		bad("VITALS_JWT_SECRET", "must be at least 16 bytes (generate one with: openssl rand -hex 32)")
	}
	if c.JWTSecret != "" && c.JWTJWKSURL != "" {
		bad("VITALS_JWT_JWKS_URL", "set either VITALS_JWT_SECRET or VITALS_JWT_JWKS_URL, not both")
	}
	if c.JWTJWKSURL != "" {
		if u, err := url.Parse(c.JWTJWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("VITALS_JWT_JWKS_URL", "must be an http(s) URL")
		}
	}
	if v := get("VITALS_JWT_MAX_TTL"); v != "" {
		d, err := metric.ParseDuration(v)
		if err != nil {
			bad("VITALS_JWT_MAX_TTL", "%q: want a duration such as 24h or 7d", v)
		}
		c.JWTMaxTTL = d
	}
	switch f := strings.ToLower(get("VITALS_LOG_FORMAT")); f {
	case "":
	case "json", "text":
		c.LogFormat = f
	default:
		bad("VITALS_LOG_FORMAT", "%q: want json or text", f)
	}
	if v := get("VITALS_LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad("VITALS_LOG_LEVEL", "%q: want debug, info, warn or error", v)
		}
	}
	if v := get("VITALS_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			bad("VITALS_MAX_BODY_BYTES", "%q: want a positive number of bytes", v)
		}
		c.MaxBodyBytes = n
	}
	if v := get("VITALS_MAX_INSTANCES_PER_SERVER"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad("VITALS_MAX_INSTANCES_PER_SERVER", "%q: want a positive number", v)
		}
		c.MaxInstancesPerServer = n
	}
	if v := get("VITALS_MAX_SAMPLE_AGE"); v != "" {
		d, err := metric.ParseDuration(v)
		if err == nil {
			err = redisstore.CheckMaxSampleAge(d, c.Tiers)
		}
		if err != nil {
			bad("VITALS_MAX_SAMPLE_AGE", "%v (want e.g. 7d, at most the longest tier's retention)", err)
		}
		c.MaxSampleAge = d
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return c, nil
}

// lookup distinguishes an unset variable from one set to "" through a
// getenv func (an empty prefix is legitimate).
func lookup(getenv func(string) string, k string) (string, bool) {
	v := getenv(k)
	return strings.TrimSpace(v), v != ""
}

// errRedisURL says what a Redis URL looks like; it never quotes the value
// (it may carry a password, and url.Parse's errors quote a piece of it).
var errRedisURL = errors.New("want redis://[user:password@]host:port[/db], rediss://…, or a comma-separated host:port list for a cluster " +
	"(percent-encode any of : / ? # [ ] @ % , in a password, e.g. # as %23)")

// checkRedisURL validates the URL's shape without ever quoting it (it may
// carry a password).
func checkRedisURL(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if strings.Contains(part, "://") {
			u, err := url.Parse(part)
			if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
				return errRedisURL
			}
			continue
		}
		if _, _, err := splitHostPort(part); err != nil {
			return errRedisURL
		}
	}
	return nil
}

func splitHostPort(s string) (string, string, error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return "", "", errors.New("no port")
	}
	if _, err := strconv.Atoi(s[i+1:]); err != nil {
		return "", "", errors.New("bad port")
	}
	return s[:i], s[i+1:], nil
}

// Logger returns a slog logger writing to w in the configured format and
// level: JSON for Lambda and systemd (CloudWatch and journald parse it),
// text for people at a terminal.
func (c Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Verifier builds the user-token verifier: HS256 with VITALS_JWT_SECRET, or
// RS256/ES256 from the key set at VITALS_JWT_JWKS_URL (fetched now, so a
// wrong URL fails at startup), with a 30 s clock-skew leeway on exp, nbf
// and iat and VITALS_JWT_MAX_TTL's lifetime bound. JWKS refresh problems are logged through
// slog.Default(), which mains point at their logger.
func (c Config) Verifier(ctx context.Context) (*auth.Verifier, error) {
	vc := auth.VerifierConfig{Issuer: c.JWTIssuer, Audience: c.JWTAudience, Leeway: 30 * time.Second, MaxTTL: c.JWTMaxTTL}
	switch {
	case c.JWTJWKSURL != "":
		keys, err := auth.NewJWKS(ctx, c.JWTJWKSURL, &http.Client{Timeout: 10 * time.Second}, slog.Default())
		if err != nil {
			return nil, fmt.Errorf("VITALS_JWT_JWKS_URL: %w", err)
		}
		vc.Keys = keys
	case c.JWTSecret != "":
		vc.Secret = []byte(c.JWTSecret)
	default:
		return nil, errors.New("configuration: set VITALS_JWT_SECRET (at least 16 bytes, e.g. openssl rand -hex 32) or VITALS_JWT_JWKS_URL")
	}
	v, err := auth.NewVerifier(vc)
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	return v, nil
}

// StoreConfig is the redisstore configuration (defaults plus the VITALS_
// overrides).
func (c Config) StoreConfig() (redisstore.Config, error) {
	sc := redisstore.DefaultConfig()
	sc.URL = string(c.RedisURL)
	sc.Prefix = c.RedisPrefix
	if c.Tiers != nil {
		sc.Tiers = c.Tiers
	}
	if c.Periods != nil {
		sc.Periods = c.Periods
	}
	if c.MaxInstancesPerServer > 0 {
		sc.MaxInstancesPerServer = c.MaxInstancesPerServer
	}
	sc.MaxSampleAge = c.MaxSampleAge
	if sc.URL == "" {
		return redisstore.Config{}, errors.New("configuration: VITALS_REDIS_URL is empty")
	}
	return sc, nil
}
