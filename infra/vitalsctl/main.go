// Command vitalsctl is the Vitals ops CLI: it enrolls, lists and revokes
// hosts (their HMAC signing keys live in Redis), binds configured instance
// ids to servers, manages alert rules, channels and silences, and issues
// and inspects user tokens (JWTs signed with VITALS_JWT_SECRET).
//
// Configuration comes from the same VITALS_* environment the functions read;
// flags override it. Run `vitalsctl help` for usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

func main() {
	// go-redis prints every failed dial itself; vitalsctl reports the one
	// error that matters, so its own logger is silenced (in main only, as
	// it is process-wide).
	redis.SetLogger(quietLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// quietLogger discards go-redis's internal log lines.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// Exit codes: 0 success, 1 the operation failed, 2 the command line is wrong.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// exitCode prints err (if any) and maps it to the process exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "vitalsctl:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "Run 'vitalsctl help' for usage.")
		return exitUsage
	}
	return exitFail
}

// usageError is a mistake on the command line (exit status 2), as opposed
// to an operation that failed.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

const usage = `vitalsctl manages Vitals host keys, instance bindings, alerting and user tokens.

Usage:
  vitalsctl host add <serverId> [--rotate] [--ingest-url URL]
                                             enroll a host; prints its env file (key shown once)
  vitalsctl host list [--json]               enrolled hosts, enrolment and key times (never keys)
  vitalsctl host revoke <serverId>           delete a host's key; its requests get 401 from then on
  vitalsctl instance bind <serverId> <instanceId> [name]
                                             let a server report a configured (not derived) instance id
  vitalsctl instance unbind <instanceId>     stop that; its history stays until retention expires it
  vitalsctl instance list [--json]           the bindings
  vitalsctl alert rule add <file.json|->     add an alert rule (JSON as POST /api/alerts/rules takes); prints its id
  vitalsctl alert rule list [--json]         the rules
  vitalsctl alert rule rm <id>               delete a rule
  vitalsctl alert channel add <name> <url|->
                                             add a notification channel (shoutrrr or webhook+https:// URL;
                                             '-' reads it from stdin); a webhook's secret is printed once
  vitalsctl alert channel list [--json]      the channels: kind and redacted target, never URL or secret
  vitalsctl alert channel rm <name>          delete a channel
  vitalsctl alert silence add --servers a,b [--rules id,..] --until RFC3339|--for 2h [--comment TEXT]
                                             suppress notifications (state is still kept); prints its id
  vitalsctl alert silence list [--json]      the active silences
  vitalsctl alert silence rm <id>            end a silence now
  vitalsctl token issue --servers a,b|'*' [--scope alerts:write] [--ttl 24h] [--issuer ISS] [--audience AUD]
                                             mint a user token (HS256, needs VITALS_JWT_SECRET)
  vitalsctl token verify <token|->           check a token and print its claims ('-' reads stdin)
  vitalsctl help                             this text

host add on a host that is already enrolled needs --rotate: it replaces the
key, and the old one stops working at once. --rotate on an unknown host is
refused too, so a typo cannot enroll a new host.

An instance id derived from the server id and the instance name (the
reporter's default) is that server's and needs no binding. Any other id is
stored only for the server it is bound to; binding it to another server
moves it there.

The alert commands change Redis directly (no token needed) and check
rules, channels and silences with the same code as /api/alerts; list
--json prints the same JSON as the API's GET.

Environment (flags of the same meaning override it):
  VITALS_REDIS_URL      --redis-url      Redis for host keys; a comma-separated list means
                                         Redis Cluster (default redis://127.0.0.1:6379)
  VITALS_REDIS_PREFIX   --redis-prefix   key prefix shared with the functions (default "vitals:")
  VITALS_JWT_SECRET     --secret-file    HS256 secret, at least 16 bytes (the flag reads it from a
                                         file so it stays out of shell history and ps)
  VITALS_JWT_ISSUER     --issuer         "iss" to set and require
  VITALS_JWT_AUDIENCE   --audience       "aud" to set and require
  VITALS_JWT_JWKS_URL   --jwks-url       token verify only: check RS256/ES256 tokens against a JWKS
  VITALS_INGEST_URL     --ingest-url     host add only: also print this VITALS_INGEST_URL line

Exit status: 0 done, 1 the operation failed, 2 bad command line.
`

// run is the whole CLI; main only wires the process to it, so tests call it
// directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "host", "hosts":
		if len(rest) == 0 {
			return usagef("host needs a subcommand: add, list or revoke")
		}
		switch rest[0] {
		case "add":
			return hostAdd(ctx, rest[1:], getenv, stdout, stderr)
		case "list", "ls":
			return hostList(ctx, rest[1:], getenv, stdout, stderr)
		case "revoke", "rm":
			return hostRevoke(ctx, rest[1:], getenv, stdout, stderr)
		}
		return usagef("unknown host subcommand %q (want add, list or revoke)", rest[0])
	case "instance", "instances":
		return instanceCmd(ctx, rest, getenv, stdout, stderr)
	case "alert", "alerts":
		return alertCmd(ctx, rest, getenv, stdout, stderr)
	case "token":
		if len(rest) == 0 {
			return usagef("token needs a subcommand: issue or verify")
		}
		switch rest[0] {
		case "issue":
			return tokenIssue(ctx, rest[1:], getenv, stdout, stderr)
		case "verify":
			return tokenVerify(ctx, rest[1:], getenv, stdout, stderr)
		}
		return usagef("unknown token subcommand %q (want issue or verify)", rest[0])
	}
	return usagef("unknown command %q", cmd)
}

// newFlags returns a flag set that reports errors as usageErrors instead of
// exiting, and prints nothing itself (run's caller prints the error).
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses flags wherever they appear among the arguments, so both
// `host add web-1 --rotate` and `host add --rotate web-1` work, and returns
// the positional arguments. Everything after "--" is positional.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usagef("%s: see 'vitalsctl help'", fs.Name())
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		// The flag package stops at the first positional argument; take it
		// and carry on with the flags after it.
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// settings resolves a setting: the flag when given on the command line,
// else the environment variable, else a default.
type settings struct {
	getenv func(string) string
	set    map[string]bool
}

func newSettings(fs *flag.FlagSet, getenv func(string) string) settings {
	s := settings{getenv: getenv, set: map[string]bool{}}
	fs.Visit(func(f *flag.Flag) { s.set[f.Name] = true })
	return s
}

func (s settings) get(flagName, flagValue, envName, def string) string {
	if s.set[flagName] {
		return flagValue
	}
	if v := strings.TrimSpace(s.getenv(envName)); v != "" {
		return v
	}
	return def
}
