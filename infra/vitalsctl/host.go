package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// opTimeout bounds one host command, Redis connection included, so a wrong
// VITALS_REDIS_URL fails in seconds rather than hanging.
const opTimeout = 30 * time.Second

// redisFlags registers the flags that locate the host keys.
type redisFlags struct{ url, prefix *string }

func addRedisFlags(fs *flag.FlagSet) redisFlags {
	return redisFlags{
		url:    fs.String("redis-url", "", ""),
		prefix: fs.String("redis-prefix", "", ""),
	}
}

// open connects to the store the functions use, as configured by flags and
// environment. The returned func closes it.
func (rf redisFlags) open(ctx context.Context, st settings, stderr io.Writer) (*redisstore.Store, func(), error) {
	u := st.get("redis-url", *rf.url, "VITALS_REDIS_URL", "")
	prefix := st.get("redis-prefix", *rf.prefix, "VITALS_REDIS_PREFIX", "")
	// Errors only: a store warning such as "redis unavailable" would just
	// repeat the error vitalsctl prints. The store never logs keys.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	s, err := openStore(ctx, u, prefix, logger)
	if err != nil {
		// Never the URL as given: its password, even one with an
		// unencoded # or ? that breaks parsing, stays out of the error.
		where := redisstore.RedactURL(u)
		if where == "" {
			where = "the default address"
		}
		return nil, nil, fmt.Errorf("connect to Redis at %s (set VITALS_REDIS_URL or --redis-url): %w", where, err)
	}
	return s, func() { _ = s.Close() }, nil
}

// serverIDArg checks the one positional argument of host add/revoke.
func serverIDArg(cmd string, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", usagef("%s: want exactly one server id, got %d arguments", cmd, len(pos))
	}
	if err := metric.CheckServerID(pos[0]); err != nil {
		return "", usagef("%s: %v", cmd, err)
	}
	return pos[0], nil
}

func hostAdd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("host add")
	rotate := fs.Bool("rotate", false, "")
	ingestFlag := fs.String("ingest-url", "", "")
	rf := addRedisFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := serverIDArg("host add", pos)
	if err != nil {
		return err
	}
	st := newSettings(fs, getenv)
	// Checked before the key is made: a key printed next to a bad URL
	// would have to be rotated again.
	ingestURL := st.get("ingest-url", *ingestFlag, "VITALS_INGEST_URL", "")
	if ingestURL != "" {
		if err := metric.CheckIngestURL(ingestURL); err != nil {
			return usagef("host add: --ingest-url: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	hk, closeFn, err := rf.open(ctx, st, stderr)
	if err != nil {
		return err
	}
	defer closeFn()

	// Replacing a key cuts off the reporter using it, so it has to be asked
	// for; and asking for it on an unknown host is most likely a typo.
	_, err = hk.HostKey(ctx, id)
	enrolled := err == nil
	if err != nil && !errors.Is(err, metric.ErrNotFound) {
		return fmt.Errorf("host add %s: %w", id, err)
	}
	switch {
	case enrolled && !*rotate:
		return fmt.Errorf("host %s is already enrolled; to replace its key run 'vitalsctl host add %s --rotate' (the old key stops working at once)", id, id)
	case !enrolled && *rotate:
		return fmt.Errorf("host %s is not enrolled, so there is no key to rotate; run 'vitalsctl host add %s' to enroll it", id, id)
	}
	key, err := hk.AddHost(ctx, id)
	if err != nil {
		return fmt.Errorf("host add %s: %w", id, err)
	}
	// stdout gets exactly the environment a reporter needs, so it can be
	// redirected into an env file; the explanation goes to stderr.
	// The key is shown only once: a failed write (a redirect onto a full disk)
	// must not exit 0 with the key lost.
	if _, err := fmt.Fprintf(stdout, "VITALS_SERVER_ID=%s\nVITALS_HOST_KEY=%s\n", id, key); err != nil {
		return fmt.Errorf("host add %s: write the key (the host is enrolled with it; run host add %s --rotate for a new one): %w", id, id, err)
	}
	lines := "two"
	if ingestURL != "" {
		if _, err := fmt.Fprintf(stdout, "VITALS_INGEST_URL=%s\n", ingestURL); err != nil {
			return fmt.Errorf("host add %s: write the ingest URL: %w", id, err)
		}
		lines = "three"
	}
	if *rotate {
		fmt.Fprintf(stderr, "Rotated the key of host %s: the old key no longer works.\n", id)
	} else {
		fmt.Fprintf(stderr, "Enrolled host %s.\n", id)
	}
	fmt.Fprintf(stderr, "The key is shown only this once. Put the %s lines above in the reporter's environment\n"+
		"(/etc/vitals/reporter.env, mode 0600) and (re)start the reporter.\n", lines)
	if ingestURL == "" {
		fmt.Fprintln(stderr, "Add VITALS_INGEST_URL=https://<your endpoint>/api/ingest too, or pass --ingest-url next time.")
	}
	return nil
}

func hostList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("host list")
	asJSON := fs.Bool("json", false, "")
	rf := addRedisFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("host list: unexpected argument %q", pos[0])
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	hk, closeFn, err := rf.open(ctx, newSettings(fs, getenv), stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	hosts, err := hk.Hosts(ctx)
	if err != nil {
		return fmt.Errorf("host list: %w", err)
	}
	if *asJSON {
		if hosts == nil {
			hosts = []metric.Host{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(hosts)
	}
	if len(hosts) == 0 {
		fmt.Fprintln(stderr, "No hosts enrolled. Enroll one with 'vitalsctl host add <serverId>'.")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER ID\tENROLLED\tKEY CREATED")
	for _, h := range hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", h.ServerID, stamp(h.EnrolledAt), stamp(h.KeyCreatedAt))
	}
	return tw.Flush()
}

func hostRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("host revoke")
	rf := addRedisFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := serverIDArg("host revoke", pos)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	hk, closeFn, err := rf.open(ctx, newSettings(fs, getenv), stderr)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := hk.RevokeHost(ctx, id); err != nil {
		if errors.Is(err, metric.ErrNotFound) {
			return fmt.Errorf("host %s is not enrolled; nothing to revoke ('vitalsctl host list' shows who is)", id)
		}
		return fmt.Errorf("host revoke %s: %w", id, err)
	}
	fmt.Fprintf(stdout, "Revoked host %s: requests signed with its key are refused from now on.\n", id)
	fmt.Fprintln(stderr, "Its history stays readable until retention expires it.")
	return nil
}

// stamp prints a time for the host table, "-" when unknown.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
