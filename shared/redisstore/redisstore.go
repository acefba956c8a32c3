// Package redisstore is the Redis implementation of metric.Store and
// metric.HostKeys: time series kept as bucketed sorted sets (one per rollup
// tier, score = bucket start), rolled up at ingest by one Lua script call per
// series, plus the latest snapshot, the server/instance index, the host keys
// and a pub/sub channel per series for the streamer.
//
// Every key of one series carries the series' hash tag ({s:<id>} or
// {i:<uuid>}), so a script only ever touches one Redis Cluster slot; the
// global keys (indexes, host keys) are separate commands.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Tier is one rollup level: points of Resolution kept for Retention.
type Tier struct {
	Resolution time.Duration
	Retention  time.Duration
}

// Config configures Open.
type Config struct {
	// URL is a redis:// or rediss:// URL (password and db included), or a
	// comma-separated list of them, which means Redis Cluster.
	URL string
	// Prefix starts every key and channel name. Default "vitals:".
	Prefix string
	// Tiers, finest first. Default DefaultTiers.
	Tiers []Tier
	// Periods are extra periods (beyond metric.StandardPeriods) to serve
	// when a tier can.
	Periods []metric.Period
	// MaxPoints caps the points one query may return; a period is served
	// by the finest tier that covers it within this many points. Default 400.
	MaxPoints int
	// Now is the clock (tests inject one); default time.Now.
	Now func() time.Time
	// MaxInstancesPerServer bounds how many live instances one server may
	// report (an instance stays live until the longest tier's retention
	// after its last sample); default 256. Each costs about 327 KiB at full
	// retention, so without a bound a reporter whose instance names churn
	// (or a compromised host key) could grow Redis without limit.
	MaxInstancesPerServer int
	// MaxSampleAge is how old a sample may be and still be stored; older
	// ones are dropped and counted as stale. It is also how long the
	// per-day idempotency bitmaps (10,800 B per series and day) are kept,
	// so it, not the longest retention, sets their memory. Default: the
	// longest retention, at most DefaultMaxSampleAge. More than the
	// longest retention is an error (an older sample would fall in no
	// tier), and so is less than an hour (a reporter back from a short
	// outage would have its spooled samples dropped).
	MaxSampleAge time.Duration
	// Lazy makes Open succeed while Redis does not answer (logging a
	// warning): every call then fails with ErrUnavailable until Redis is
	// back, and the client reconnects by itself. Functions want this: a
	// process that exits when Redis blips is a crash loop on Lambda and a
	// restart storm under systemd, where a 503 + Retry-After per request
	// lets reporters re-send. Tools (vitalsctl) want the error at once.
	Lazy bool
}

// DefaultMaxSampleAge caps Config.MaxSampleAge's default. It matches the
// reporter spool's default age bound: a reporter never holds a sample
// longer, so a longer tier (e.g. 6h:90d) need not keep 90 days of bitmaps.
const DefaultMaxSampleAge = 7 * 24 * time.Hour

// DefaultMaxInstancesPerServer is Config.MaxInstancesPerServer's default.
const DefaultMaxInstancesPerServer = 256

// DefaultTiers serve the four standard periods with at most 360 points each.
var DefaultTiers = []Tier{
	{10 * time.Second, time.Hour},
	{time.Minute, 6 * time.Hour},
	{5 * time.Minute, 24 * time.Hour},
	{30 * time.Minute, 7 * 24 * time.Hour},
}

// DefaultConfig is a local Redis with the default prefix and tiers.
func DefaultConfig() Config {
	return Config{
		URL:       "redis://127.0.0.1:6379",
		Prefix:    "vitals:",
		Tiers:     slices.Clone(DefaultTiers),
		MaxPoints: 400,

		MaxInstancesPerServer: DefaultMaxInstancesPerServer,
	}
}

// CheckMaxSampleAge says why age cannot be Config.MaxSampleAge with these
// tiers (DefaultTiers when empty), or returns nil.
func CheckMaxSampleAge(age time.Duration, tiers []Tier) error {
	if len(tiers) == 0 {
		tiers = DefaultTiers
	}
	longest := longestRetention(tiers)
	switch {
	case age < time.Hour:
		return fmt.Errorf("max sample age %s is under 1h: a reporter back from a short outage would have its spooled samples dropped", metric.FormatDuration(age))
	case age > longest:
		return fmt.Errorf("max sample age %s is longer than the longest tier's retention %s: older samples would fall in no tier", metric.FormatDuration(age), metric.FormatDuration(longest))
	}
	return nil
}

// longestRetention is how long the longest tier keeps its points: how long
// a series, and a server's or instance's index entry, outlives its last
// sample.
func longestRetention(tiers []Tier) time.Duration {
	var d time.Duration
	for _, t := range tiers {
		d = max(d, t.Retention)
	}
	return d
}

// liveSince is the oldest last-seen time (unix ms) at which a server or
// instance is still live at now. Ingest prunes index entries older than
// that; reads hide them.
func (s *Store) liveSince(now time.Time) int64 { return now.Add(-s.longest).UnixMilli() }

// ParseTiers parses "10s:1h,1m:6h,5m:24h,30m:7d" (resolution:retention,
// durations as metric.ParseDuration reads them). The result is sorted finest
// first; resolutions must be whole seconds, distinct, and not longer than
// their retention.
func ParseTiers(s string) ([]Tier, error) {
	var tiers []Tier
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r, k, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("tier %q: want resolution:retention", part)
		}
		res, err := metric.ParseDuration(strings.TrimSpace(r))
		if err != nil {
			return nil, fmt.Errorf("tier %q: resolution: %w", part, err)
		}
		ret, err := metric.ParseDuration(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("tier %q: retention: %w", part, err)
		}
		tiers = append(tiers, Tier{res, ret})
	}
	if err := checkTiers(tiers); err != nil {
		return nil, err
	}
	return tiers, nil
}

func checkTiers(tiers []Tier) error {
	if len(tiers) == 0 {
		return errors.New("no tiers")
	}
	slices.SortFunc(tiers, func(a, b Tier) int { return int(a.Resolution - b.Resolution) })
	for i, t := range tiers {
		if t.Resolution < time.Second || t.Resolution%time.Second != 0 {
			return fmt.Errorf("tier resolution %s: must be whole seconds", t.Resolution)
		}
		if t.Retention%time.Second != 0 || t.Retention < t.Resolution {
			return fmt.Errorf("tier %s: retention %s must be whole seconds and at least the resolution", t.Resolution, t.Retention)
		}
		if i > 0 && tiers[i-1].Resolution == t.Resolution {
			return fmt.Errorf("two tiers with resolution %s", t.Resolution)
		}
	}
	return nil
}

// ParsePeriods parses extra periods such as "30d,90d".
func ParsePeriods(s string) ([]metric.Period, error) {
	var ps []metric.Period
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		d, err := metric.ParseDuration(name)
		if err != nil {
			return nil, fmt.Errorf("period: %w", err)
		}
		ps = append(ps, metric.Period{Name: name, Window: d})
	}
	return ps, nil
}

// Store is the Redis store. Safe for concurrent use; it keeps no state
// besides its configuration and the client's connection pool.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	tiers     []Tier
	periods   []metric.Period
	maxPoints int
	// maxInstances bounds the live instances of one server.
	maxInstances int
	now          func() time.Time
	logger       *slog.Logger
	longest      time.Duration // longest retention: index and snapshot horizon
	horizon      time.Duration // MaxSampleAge: stale cutoff and bitmap lifetime
	// budget bounds the Redis work of one request (see Bound), or of one
	// command outside a request; 0 means unbounded.
	budget time.Duration
}

var (
	_ metric.Store    = (*Store)(nil)
	_ metric.HostKeys = (*Store)(nil)
)

// Open connects to Redis as cfg says, pings it and loads the ingest script.
// A Redis that does not answer is an error wrapping metric.ErrUnavailable; a
// bad configuration is a plain error.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	} else {
		redis.SetLogger(redisLog{logger})
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "vitals:"
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, errors.New("redis key prefix must not contain { or }: it would break the hash tags")
	}
	if len(cfg.Tiers) == 0 {
		cfg.Tiers = DefaultTiers
	}
	tiers := slices.Clone(cfg.Tiers)
	if err := checkTiers(tiers); err != nil {
		return nil, err
	}
	if cfg.MaxPoints <= 0 {
		cfg.MaxPoints = 400
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxInstancesPerServer <= 0 {
		cfg.MaxInstancesPerServer = DefaultMaxInstancesPerServer
	}
	rdb, err := newClient(cfg.URL)
	if err != nil {
		return nil, err
	}
	s := &Store{rdb: rdb, prefix: cfg.Prefix, tiers: tiers, maxPoints: cfg.MaxPoints, maxInstances: cfg.MaxInstancesPerServer, now: cfg.Now, logger: logger, budget: requestBudgetOf(cfg.URL, rdb)}
	rdb.AddHook(budgetHook{s})
	s.longest = longestRetention(tiers)
	s.horizon = min(s.longest, DefaultMaxSampleAge)
	if cfg.MaxSampleAge > 0 {
		if err := CheckMaxSampleAge(cfg.MaxSampleAge, tiers); err != nil {
			_ = rdb.Close()
			return nil, err
		}
		s.horizon = cfg.MaxSampleAge
	}
	s.periods = slices.Clone(metric.StandardPeriods)
	for _, p := range cfg.Periods {
		if slices.ContainsFunc(s.periods, func(q metric.Period) bool { return q.Name == p.Name }) {
			continue
		}
		if _, err := s.tierFor(p); err != nil {
			_ = rdb.Close()
			return nil, unservedPeriod(p, cfg.MaxPoints)
		}
		s.periods = append(s.periods, p)
	}
	// Load the ingest script now (on every master of a cluster), so the
	// first batch does not pay a NOSCRIPT round trip; a cache that is
	// empty later (Redis came up after us, or restarted) is handled by
	// Ingest.
	err = s.Ping(ctx)
	if err == nil {
		for _, sc := range []*redis.Script{ingestScript, indexScript} {
			if err = sc.Load(ctx, rdb).Err(); err != nil {
				err = s.wrap(fmt.Errorf("load ingest scripts: %w", err))
				break
			}
		}
	}
	if err != nil {
		if cfg.Lazy && errors.Is(err, metric.ErrUnavailable) {
			logger.Warn("redis not answering at start; serving 503 until it does", "err", err)
			return s, nil
		}
		_ = rdb.Close()
		return nil, err
	}
	return s, nil
}

// Client defaults where the URL does not set them (URL query options such
// as ?read_timeout=3s win). With them a Redis that stops answering costs a
// request at most DefaultRequestBudget, inside the 3 s in which every
// request that needs Redis answers or gets 503 + Retry-After, in every
// runtime. go-redis's own defaults (5 s reads, three retries, 5 s dials)
// held a request for 10-20 s, past the functions' 10 s Lambda timeout.
// Reads get 2 s, not less: a large ingest pipeline on a busy Redis must
// still fit, or its batch would be refused on every retry.
const (
	DefaultDialTimeout  = time.Second
	DefaultReadTimeout  = 2 * time.Second
	DefaultWriteTimeout = 2 * time.Second
	// DefaultPoolTimeout bounds the wait for a free connection when every
	// pooled one is stuck on a stalled Redis.
	DefaultPoolTimeout = 2 * time.Second
	// DefaultMaxRetries: one retry (on a fresh connection) rides out a
	// connection Redis closed while idle.
	DefaultMaxRetries = 1
	// DefaultRequestBudget is how long all the Redis work of one request
	// may take together (see Store.Bound). A URL that sets read_timeout
	// gets twice that instead (a try and a retry).
	DefaultRequestBudget = 2500 * time.Millisecond
)

// newClient builds a plain client for one URL and a cluster client for a
// comma-separated list (credentials, TLS and timeouts from the first URL),
// with the defaults above.
func newClient(raw string) (redis.UniversalClient, error) {
	var urls []string
	for u := range strings.SplitSeq(raw, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	// A bare host:port list ("10.0.0.1:6379,10.0.0.2:6379") is plain
	// redis:// without credentials.
	if len(urls) > 0 && !strings.Contains(urls[0], "://") {
		urls[0] = "redis://" + urls[0]
	}
	if len(urls) == 0 {
		return nil, errors.New("redis URL is empty")
	}
	// url.Parse's errors quote the URL, and a fragment of it even when
	// they do not (`invalid port ":pa" after host` is the start of a
	// password with a ? in it), so they are never shown.
	first, err := url.Parse(urls[0])
	if err != nil {
		return nil, fmt.Errorf("redis URL %s: %w", RedactURL(urls[0]), errUnparsable)
	}
	set := first.Query()
	opts := make([]*redis.Options, len(urls))
	for i, u := range urls {
		// Later nodes of a cluster list may be bare host:port and then
		// take the first URL's scheme, credentials and query, so an AUTH
		// token is written once: rediss://:tok@a:6379,b:6379,c:6379.
		if i > 0 && !strings.Contains(u, "://") {
			node := *first
			node.Host = u
			u = node.String()
		}
		if _, err := url.Parse(u); err != nil {
			return nil, fmt.Errorf("redis URL %s: %w", RedactURL(u), errUnparsable)
		}
		o, err := redis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("redis URL %s: %w", RedactURL(u), err)
		}
		if len(urls) > 1 && o.DB != 0 {
			return nil, fmt.Errorf("redis URL %s: Redis Cluster has only database 0", RedactURL(u))
		}
		opts[i] = o
	}
	for _, o := range opts {
		// Fail fast when Redis is away: handlers answer 503 + Retry-After
		// and the reporter re-sends (ingest is idempotent), so long retry
		// loops would only hold requests open.
		if !set.Has("max_retries") {
			o.MaxRetries = DefaultMaxRetries
		}
		if !set.Has("dial_timeout") {
			o.DialTimeout = DefaultDialTimeout
		}
		if !set.Has("read_timeout") {
			o.ReadTimeout = DefaultReadTimeout
		}
		if !set.Has("write_timeout") {
			o.WriteTimeout = DefaultWriteTimeout
		}
		if !set.Has("pool_timeout") {
			o.PoolTimeout = DefaultPoolTimeout
		}
		o.DialerRetries = 1
		// A caller's deadline (the request budget, a handler's own
		// timeout) reaches the socket: without this go-redis ignores it
		// and waits out its own timeouts.
		o.ContextTimeoutEnabled = true
	}
	o := opts[0]
	if len(opts) == 1 {
		return redis.NewClient(o), nil
	}
	addrs := make([]string, len(opts))
	for i, x := range opts {
		addrs[i] = x.Addr
	}
	// The first URL's settings (credentials, TLS, timeouts and pool
	// sizes from its query) apply to every node.
	return redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 addrs,
		ClientName:            o.ClientName,
		Protocol:              o.Protocol,
		Username:              o.Username,
		Password:              o.Password,
		TLSConfig:             o.TLSConfig,
		MaxRetries:            o.MaxRetries,
		MinRetryBackoff:       o.MinRetryBackoff,
		MaxRetryBackoff:       o.MaxRetryBackoff,
		DialTimeout:           o.DialTimeout,
		DialerRetries:         o.DialerRetries,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		PoolFIFO:              o.PoolFIFO,
		PoolSize:              o.PoolSize,
		PoolTimeout:           o.PoolTimeout,
		MinIdleConns:          o.MinIdleConns,
		MaxIdleConns:          o.MaxIdleConns,
		MaxActiveConns:        o.MaxActiveConns,
		ConnMaxIdleTime:       o.ConnMaxIdleTime,
		ConnMaxLifetime:       o.ConnMaxLifetime,
	}), nil
}

// requestBudgetOf is how long one request may spend on Redis with a
// client for raw: DefaultRequestBudget, or twice the read timeout the URL
// sets (0, unbounded, when that is negative: read_timeout=-1 asks for no
// timeout).
func requestBudgetOf(raw string, rdb redis.UniversalClient) time.Duration {
	first, _, _ := strings.Cut(strings.TrimSpace(raw), ",")
	if u, err := url.Parse(first); err != nil || !u.Query().Has("read_timeout") {
		return DefaultRequestBudget
	}
	var read time.Duration
	switch c := rdb.(type) {
	case *redis.Client:
		read = c.Options().ReadTimeout
	case *redis.ClusterClient:
		read = c.Options().ReadTimeout
	}
	if read <= 0 {
		return 0
	}
	return 2 * read
}

// errUnparsable stands for url.Parse's error, which quotes the URL.
var errUnparsable = errors.New("not a valid URL (a password with any of : / ? # [ ] @ % , must be percent-encoded, e.g. # as %23)")

// RedactURL hides the password in a Redis URL, or in each of a
// comma-separated list of them, for messages and logs. A URL too broken to
// parse keeps only its scheme and what follows its last @ (the host), so a
// password with an unencoded # or ? is hidden too.
func RedactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "@") {
			parts[i] = p
			continue
		}
		if u, err := url.Parse(p); err == nil {
			parts[i] = u.Redacted()
			continue
		}
		scheme, _, ok := strings.Cut(p, "://")
		if !ok {
			scheme = "redis"
		}
		parts[i] = scheme + "://[redacted]@" + p[strings.LastIndex(p, "@")+1:]
	}
	return strings.Join(parts, ",")
}

// Close releases the connections.
func (s *Store) Close() error { return s.rdb.Close() }

// Client is the underlying client, for the streamer's subscriptions.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

// ServerChannel is the pub/sub channel carrying each new server sample as
// the JSON of metric.RawServerMetric.
func (s *Store) ServerChannel(serverID string) string { return s.prefix + "live:server:" + serverID }

// InstanceChannel is the pub/sub channel carrying each new instance reading
// as the JSON of metric.RawInstanceMetric.
func (s *Store) InstanceChannel(instanceID string) string {
	return s.prefix + "live:instance:" + instanceID
}

// Periods lists the standard periods plus the configured extras a tier can
// serve.
func (s *Store) Periods() []metric.Period { return slices.Clone(s.periods) }

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.wrap(s.rdb.Ping(ctx).Err())
}

// tierFor picks the finest tier whose retention covers p and which serves it
// in at most MaxPoints points.
func (s *Store) tierFor(p metric.Period) (Tier, error) {
	for _, t := range s.tiers {
		if t.Retention >= p.Window && int64(p.Window/t.Resolution) <= int64(s.maxPoints) {
			return t, nil
		}
	}
	return Tier{}, metric.Errorf(metric.ErrInvalid, "period %s cannot be served by the configured tiers", p.Name)
}

// redisLog routes go-redis's own messages (failed dials, pub/sub
// reconnects) into the process's structured log, where they are
// filterable and parsed like every other line, instead of the standard
// logger's bare "redis: <date> pool.go:…" lines on stderr. go-redis has one
// logger per process, so the last Open given a logger sets it.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	r.l.WarnContext(ctx, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "), "component", "go-redis")
}

// unservedPeriod says why no tier serves p and which tier would: a query
// answers at most maxPoints points, so the tier must keep the whole window
// at a resolution no finer than window/maxPoints. Refusing to start beats
// the alternative (a period silently missing from ?period=), which an
// operator would only find when a dashboard breaks.
func unservedPeriod(p metric.Period, maxPoints int) error {
	need := (p.Window + time.Duration(maxPoints) - 1) / time.Duration(maxPoints)
	need = (need + time.Second - 1).Truncate(time.Second)
	suggest := need
	for _, r := range []time.Duration{time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour} {
		if r >= need {
			suggest = r
			break
		}
	}
	return fmt.Errorf("period %s is not served by any tier: a query returns at most %d points, so it needs a tier "+
		"keeping at least %s at a resolution of %s or coarser; add e.g. %s:%s to the tiers",
		p.Name, maxPoints, metric.FormatDuration(p.Window), need, metric.FormatDuration(suggest), metric.FormatDuration(p.Window))
}

// Key layout. Series keys: prefix + "{s:<id>}:" or "{i:<uuid>}:" + suffix.
func (s *Store) serverTag(id string) string   { return s.prefix + "{s:" + id + "}:" }
func (s *Store) instanceTag(id string) string { return s.prefix + "{i:" + id + "}:" }
func tierKey(tag string, t Tier) string       { return tag + "r" + itoa(int64(t.Resolution/time.Second)) }
func latestKey(tag string) string             { return tag + "latest" }

// serverInstancesKey is a server's live instances, id → last seen (unix
// ms): its own count for the per-server cap, pruned by the server's own
// ingests, in the server's slot.
func (s *Store) serverInstancesKey(id string) string { return s.serverTag(id) + "instances" }
func seenKey(tag string, day int64) string           { return tag + "seen:" + itoa(day) }
func (s *Store) serversKey() string                  { return s.prefix + "servers" }
func (s *Store) instancesKey() string                { return s.prefix + "instances" }
func (s *Store) instancesSeenKey() string            { return s.prefix + "instances:seen" }
func (s *Store) hostsKey() string                    { return s.prefix + "hosts" }

// bindingsKey holds the operator's instance bindings, id → instanceRef:
// configuration, so it never expires.
func (s *Store) bindingsKey() string { return s.prefix + "instances:bindings" }

// wrap turns connectivity failures into metric.ErrUnavailable (503 +
// Retry-After upstream) and leaves other errors as they are. The
// *metric.Error in front carries the client-safe text (no addresses), which
// handlers show; the cause stays in the chain for their logs, so the store
// itself logs nothing.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %w", metric.Errorf(metric.ErrUnavailable, "redis unavailable: %s", shortErr(err)), err)
	}
	return err
}

func unavailable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &ne), errors.As(err, &oe),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed),
		redis.IsLoadingError(err), redis.IsClusterDownError(err),
		redis.HasErrorPrefix(err, "TRYAGAIN"), redis.HasErrorPrefix(err, "MASTERDOWN"),
		// A full Redis (maxmemory with noeviction) refuses writes until
		// memory is freed or raised: the store is unavailable, not broken,
		// and the reporter keeps the batch and re-sends it.
		oom(err):
		return true
	}
	return false
}

// oom reports Redis's refusal to write past maxmemory. A write inside the
// ingest script fails with the same reply, carried in the script's error.
func oom(err error) bool {
	return redis.HasErrorPrefix(err, "OOM") ||
		(isRedisError(err) && strings.Contains(err.Error(), "OOM command not allowed"))
}

func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// shortErr keeps the client message free of addresses.
func shortErr(err error) string {
	switch {
	case errors.Is(err, redis.ErrPoolTimeout):
		return "connection pool timeout"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case redis.IsLoadingError(err):
		return "loading"
	case redis.IsClusterDownError(err):
		return "cluster down"
	case oom(err):
		return "out of memory"
	}
	return "connection failed"
}
