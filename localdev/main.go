// Command localdev runs the whole Vitals stack on one machine and one port:
// Redis (provisioned if needed), the ingest and query handlers, the streamer
// with its live-view page, the alert evaluator (every 5 s), and the real
// reporter for this machine, in one process. It is what `make dev` runs.
// Subcommands: `token` prints a fresh token for the local secret; `load`
// runs the streamer load test; `ingestmem` measures the ingest process's
// peak memory under heavy batches.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vitals-dev/vitals/localdev/ingestmem"
	"github.com/vitals-dev/vitals/localdev/loadtest"
	"github.com/vitals-dev/vitals/reporter"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/evaluator"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/httpserve"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/notify"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/streamer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "localdev:", err)
		os.Exit(1)
	}
}

// evaluateEvery is the period of the in-process alert evaluator.
const evaluateEvery = 5 * time.Second

// stateDir holds everything localdev keeps between runs (git-ignored);
// VITALS_LOCALDEV_DIR moves it.
var stateDir = ".localdev"

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if d := getenv("VITALS_LOCALDEV_DIR"); d != "" {
		stateDir = d
	}
	if len(args) > 0 {
		switch args[0] {
		case "load":
			return loadtest.Main(ctx, args[1:], stdout)
		case "ingestmem":
			return ingestmem.Main(ctx, args[1:], stdout)
		case "token":
			return tokenCmd(args[1:], getenv, stdout, stderr)
		case "help", "-h", "--help":
			fmt.Fprintln(stdout, "usage: localdev [token [--servers a,b|'*'] [--scope alerts:write] [--ttl 24h] | load [flags] | ingestmem [flags]]\n\nWith no command: run the whole stack (see README, \"make dev\").")
			return nil
		default:
			return fmt.Errorf("unknown command %q (try: localdev help)", args[0])
		}
	}
	return serve(ctx, getenv, stdout, stderr)
}

// tokenCmd is `localdev token [--servers a,b|'*'] [--ttl 24h]`: a token for
// the local secret, on stdout alone so TOKEN=$(go run ./localdev token)
// works. Every argument is checked: a token wider than asked for is the
// one mistake this command must not make quietly.
func tokenCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("localdev token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	servers := fs.String("servers", "*", "comma-separated server ids the token may read, or '*' for all")
	ttl := fs.String("ttl", "24h", "how long the token is valid: 30m, 24h, 7d…")
	scope := fs.String("scope", auth.ScopeAlertsWrite, "space-separated scopes (alerts:write lets it change alert rules, channels and silences); '' for read-only")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) { // -h: the usage is printed, nothing failed
			return nil
		}
		return fmt.Errorf("token: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected argument %q (server ids go in --servers)", fs.Arg(0))
	}
	var list []string
	for _, id := range strings.Split(*servers, ",") {
		id = strings.TrimSpace(id)
		switch {
		case id == "" || slices.Contains(list, id):
			continue
		case id != "*" && !metric.ValidServerID(id):
			return fmt.Errorf("token: --servers: %q is not a server id (letters, digits, '.', '_', '-')", id)
		}
		list = append(list, id)
	}
	switch {
	case len(list) == 0:
		return errors.New("token: --servers: give server ids (a,b) or '*' for all")
	case len(list) > 1 && slices.Contains(list, "*"):
		return errors.New("token: --servers: '*' already means every server; give it alone")
	}
	d, err := metric.ParseDuration(*ttl)
	if err != nil {
		return fmt.Errorf("token: --ttl: want a duration like 1h, 24h or 7d, got %q", *ttl)
	}
	secret, _, err := jwtSecret(getenv)
	if err != nil {
		return err
	}
	tok, err := auth.IssueScopedToken([]byte(secret), list, *scope, d, getenv("VITALS_JWT_ISSUER"), getenv("VITALS_JWT_AUDIENCE"), time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	env := withDefaults(getenv, map[string]string{
		"VITALS_ADDR":       "127.0.0.1:8080",
		"VITALS_LOG_FORMAT": "text",
	})
	secret, secretFrom, err := jwtSecret(getenv)
	if err != nil {
		return err
	}
	env = withDefaults(env, map[string]string{"VITALS_JWT_SECRET": secret})
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	log := cfg.Logger(stderr)

	redis, err := provisionRedis(ctx, env("VITALS_REDIS_URL"), filepath.Join(stateDir, "redis"), log)
	if err != nil {
		return err
	}
	defer redis.stop()
	env = withDefaults(env, map[string]string{"VITALS_REDIS_URL": redis.URL})
	if cfg, err = config.Load(env); err != nil {
		return err
	}
	storeCfg, err := cfg.StoreConfig()
	if err != nil {
		return err
	}
	store, err := redisstore.Open(ctx, storeCfg, log)
	if err != nil {
		return fmt.Errorf("open redis at %s: %w", redisstore.RedactURL(redis.URL), err)
	}
	defer store.Close() //nolint:errcheck // shutting down; the Redis pool holds no unsaved data
	verifier, err := cfg.Verifier(ctx)
	if err != nil {
		return err
	}

	// Alerting: the REST routes, and the long-running evaluator in this
	// process (functions/evaluator's loop mode), every 5 s.
	alerts := alertstore.New(store.Client(), store.Prefix(), store.Wrap)
	notifier := notify.New(env("VITALS_PUBLIC_URL"), nil)
	alertDeps := &httpapi.AlertDeps{Store: alerts, Sender: notifier}
	eval := evaluator.New(store, alerts, notifier, evaluator.Config{}, log.With("component", "evaluator"), nil)
	stream, err := streamer.New(streamer.Deps{
		Store: store, Client: store.Client(), Channels: store, Verifier: verifier, Logger: log, Now: time.Now, Alerts: alerts,
	}, streamer.Config{})
	if err != nil {
		return err
	}
	// The functions answer in one go and get a write deadline, as they do
	// deployed; the streamer's streams bound their own writes.
	handler := mux(
		httpserve.BoundWrite(httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Logger: log, Now: time.Now})),
		httpserve.BoundWrite(httpapi.NewQuery(httpapi.QueryDeps{Store: store, Verifier: verifier, Logger: log, Now: time.Now, Alerts: alertDeps})),
		stream.Handler(),
	)

	ln, err := net.Listen("tcp", env("VITALS_ADDR"))
	if err != nil {
		return fmt.Errorf("listen on %s (set VITALS_ADDR to use another address): %w", env("VITALS_ADDR"), err)
	}
	srv := httpserve.NewServer(store.Bound(handler), log)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	agent, serverID, interval, err := startReporter(ctx, env, store, base, log)
	if err != nil {
		return err
	}
	token, err := auth.IssueScopedToken([]byte(secret), []string{"*"}, auth.ScopeAlertsWrite, 24*time.Hour, env("VITALS_JWT_ISSUER"), env("VITALS_JWT_AUDIENCE"), time.Now())
	if err != nil {
		return err
	}
	redisWhere := redis.URL
	switch redis.Kind {
	case "redis-server":
		redisWhere += " (redis-server, data in " + filepath.Join(stateDir, "redis") + ")"
	case "embedded":
		redisWhere += " (embedded in-memory Redis: data is lost on exit; install redis-server to keep it)"
	default:
		redisWhere = "VITALS_REDIS_URL"
	}
	fmt.Fprintf(stdout, `
Vitals is up: %[1]s/
  redis:    %[2]s
  server:   %[3]s (reporting every %[4]s, instance "localdev")
  secret:   %[6]s
  token:    %[5]s   (servers ["*"], scope alerts:write, valid 24h)
  live:     %[1]s/#token=%[5]s
  try:      curl -H "Authorization: Bearer %[5]s" %[1]s/api/servers/%[3]s/metrics/latest

`, base, redisWhere, serverID, interval, token, secretFrom)

	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Run(ctx) }()
	evalDone := make(chan error, 1)
	go func() { evalDone <- eval.Run(ctx, evaluateEvery) }()

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case err := <-agentDone:
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("reporter: %w", err)
		}
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), httpserve.ShutdownTimeout)
	defer cancel()
	_ = stream.Shutdown(shutdownCtx)
	_ = srv.Shutdown(shutdownCtx)
	select { // let the reporter flush what it can
	case <-agentDone: //nolint:errcheck // the agent's exit error was already logged by the agent; here we only wait for its flush
	case <-shutdownCtx.Done():
	}
	select {
	case <-evalDone: //nolint:errcheck // the evaluator logs its own exit; here we only wait for it
	case <-shutdownCtx.Done():
	}
	return nil
}

// mux mounts the three handlers on one port exactly as they are deployed
// separately: each route's path goes to the function that owns it, with
// every method, so a wrong method gets that function's own JSON 405; any
// other path under /api/ goes to the query function (JSON 404), the rest to
// the streamer (live-view page and its assets, /healthz).
func mux(ingest, query, stream http.Handler) http.Handler {
	m := http.NewServeMux()
	mounted := map[string]bool{}
	for _, r := range httpapi.Routes() {
		var h http.Handler
		switch r.Function {
		case httpapi.FunctionIngest:
			h = ingest
		case httpapi.FunctionQuery:
			h = query
		case httpapi.FunctionStreamer:
			h = stream
		default:
			continue
		}
		if !mounted[r.Path] {
			mounted[r.Path] = true
			m.Handle(r.Path, h)
		}
	}
	m.Handle("/api/", query)
	m.Handle("/", stream)
	return m
}

// startReporter enrolls this machine (once; the key is kept in Redis) and
// builds the real reporter for it, with the localdev process as an instance.
func startReporter(ctx context.Context, env func(string) string, keys metric.HostKeys, base string, log *slog.Logger) (*reporter.Agent, string, time.Duration, error) {
	serverID := env("VITALS_SERVER_ID")
	if serverID == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, "", 0, fmt.Errorf("hostname: %w (set VITALS_SERVER_ID)", err)
		}
		serverID = sanitizeID(h)
	}
	if err := metric.CheckServerID(serverID); err != nil {
		return nil, "", 0, fmt.Errorf("VITALS_SERVER_ID: %w", err)
	}
	interval := 10 * time.Second
	if v := env("VITALS_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return nil, "", 0, fmt.Errorf("VITALS_INTERVAL: want a duration of at least 1s, got %q", v)
		}
		interval = d
	}
	key, err := keys.HostKey(ctx, serverID)
	if errors.Is(err, metric.ErrNotFound) {
		key, err = keys.AddHost(ctx, serverID)
	}
	if err != nil {
		return nil, "", 0, fmt.Errorf("enroll %s: %w", serverID, err)
	}
	agent, err := reporter.New(reporter.Config{
		IngestURL: base + "/api/ingest",
		ServerID:  serverID,
		HostKey:   key,
		Interval:  interval,
		StateDir:  filepath.Join(stateDir, "reporter"),
		Instances: []reporter.InstanceConfig{{Name: "localdev", PID: os.Getpid()}},
	}, log.With("component", "reporter"))
	if err != nil {
		return nil, "", 0, err
	}
	return agent, serverID, interval, nil
}

// sanitizeID maps a hostname onto the server id alphabet.
func sanitizeID(h string) string {
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, h)
	if len(h) > 128 {
		h = h[:128]
	}
	if h == "" {
		h = "localhost"
	}
	return h
}

// jwtSecret returns VITALS_JWT_SECRET, or the one generated on an earlier
// run (kept in .localdev so printed tokens survive restarts), or a new one;
// and where it came from, for the banner. The secret itself is never
// printed: make dev's output ends up in scrollback and CI logs.
func jwtSecret(getenv func(string) string) (secret, from string, err error) {
	if s := getenv("VITALS_JWT_SECRET"); s != "" {
		return s, "from VITALS_JWT_SECRET", nil
	}
	path := filepath.Join(stateDir, "jwt-secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), "kept in " + path + " (earlier tokens still work)", nil
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", "", err
	}
	s := auth.NewSecret()
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return s, "generated now, kept in " + path + " (go run ./localdev token prints new tokens)", nil
}

// withDefaults layers defaults under an env lookup.
func withDefaults(getenv func(string) string, defaults map[string]string) func(string) string {
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return defaults[k]
	}
}
