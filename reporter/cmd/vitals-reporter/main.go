// Command vitals-reporter is the Vitals host agent: it samples this host's
// health and pushes it, signed, to the ingest endpoint.
//
//	vitals-reporter run      daemon: a sample every interval (systemd)
//	vitals-reporter once     one sample, flush the spool, exit 0 if delivered (cron)
//	vitals-reporter print    one sample as JSON on stdout; no network
//	vitals-reporter version
//
// Configuration: flags > the env file (--env-file, VITALS_ENV_FILE; read as
// systemd reads EnvironmentFile=) > VITALS_* environment > JSON config file.
// See the README's reporter section.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/vitals-dev/vitals/reporter"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	if os.Getenv("GOGC") == "" {
		// The live heap is about 1 MiB; the default GOGC lets it grow to the
		// 4 MiB minimum goal between collections. Halving it trims RSS for
		// a few microseconds of GC per sample: a host agent should be small.
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vitals-reporter:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const usage = `usage: vitals-reporter <mode> [flags]

modes:
  run      collect every interval and push to ingest until SIGTERM (systemd)
  once     collect one sample, send it and anything spooled; exit 0 only if delivered (cron)
  print    collect one sample and print it as JSON; no network, no key needed
  version  print the version

Run "vitals-reporter <mode> -h" for the flags.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("a mode is required")
	}
	mode, rest := args[0], args[1:]
	switch mode {
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "vitals-reporter %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "run", "once", "print":
	default:
		fmt.Fprint(stderr, usage)
		return usagef("unknown mode %q", mode)
	}

	cfg, ls, err := loadConfig(mode, rest, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := ls.logger(stderr)
	agent, err := reporter.New(cfg, logger)
	if err != nil {
		return usageError{err}
	}

	switch mode {
	case "print":
		s, err := agent.Collect(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	case "once":
		return asUsage(agent.Once(ctx))
	default:
		return asUsage(agent.Run(ctx))
	}
}

// asUsage marks configuration errors found late (missing URL or key) as
// usage errors, for exit status 2.
func asUsage(err error) error {
	if err != nil && errors.Is(err, reporter.ErrConfig) {
		return usageError{err}
	}
	return err
}

// logSettings pick the log handler.
type logSettings struct{ format, level string }

func (l logSettings) validate() error {
	if l.format != "text" && l.format != "json" {
		return fmt.Errorf("log format %q: want text or json", l.format)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return fmt.Errorf("log level %q: want debug, info, warn or error", l.level)
	}
	return nil
}

func (l logSettings) logger(w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(l.level)) // validated by logSettings.validate when the config was read
	opts := &slog.HandlerOptions{Level: lv}
	if l.format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
