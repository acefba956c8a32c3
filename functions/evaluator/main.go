// Command evaluator is the alert evaluator: it compares every rule with
// the newest state of every server and instance, records transitions and
// delivers notifications (shared/evaluator). It runs two ways, from the
// same binary:
//
//   - under AWS Lambda (AWS_LAMBDA_RUNTIME_API set), one pass per
//     invocation, scheduled every minute by EventBridge (template.yaml);
//   - anywhere else, as a long-running loop evaluating every
//     VITALS_EVALUATE_EVERY (default 5s) and delivering as messages come
//     due (infra/systemd/vitals-evaluator.service; localdev runs it).
//
// Any number may run at once, Lambda and loops mixed: transitions and
// deliveries are coordinated through Redis, never double-notified.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/evaluator"
	"github.com/vitals-dev/vitals/shared/notify"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// defaultEvery is the long-running loop's evaluation period: a host-down
// alert fires within it of its deadline.
const defaultEvery = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "evaluator:", err)
		os.Exit(1)
	}
}

// run is main with its arguments and environment passed in, for tests.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("evaluator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	every := fs.Duration("every", 0, "evaluation period of the loop (default VITALS_EVALUATE_EVERY or 5s)")
	once := fs.Bool("once", false, "one pass and the deliveries due, then exit (as on Lambda)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *every == 0 {
		*every = defaultEvery
		if v := getenv("VITALS_EVALUATE_EVERY"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("VITALS_EVALUATE_EVERY: want a duration such as 5s, got %q", v)
			}
			*every = d
		}
	}
	if *every < time.Second {
		return fmt.Errorf("evaluation period %s: must be at least 1s", *every)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	logger := cfg.Logger(stderr).With("function", "evaluator")
	slog.SetDefault(logger)
	sc, err := cfg.StoreConfig()
	if err != nil {
		return err
	}
	sc.Lazy = true
	store, err := redisstore.Open(ctx, sc, logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() { _ = store.Close() }() // shutting down; the Redis pool holds no unsaved data
	ev := evaluator.New(store, alertstore.New(store.Client(), store.Prefix(), store.Wrap),
		notify.New(getenv("VITALS_PUBLIC_URL"), nil), evaluator.Config{}, logger, nil)

	switch {
	case getenv("AWS_LAMBDA_RUNTIME_API") != "":
		logger.Info("starting under the Lambda runtime")
		lambda.StartWithOptions(handler(ev, logger), lambda.WithContext(ctx))
		return nil
	case *once:
		_, err := handler(ev, logger)(ctx, events.EventBridgeEvent{})
		return err
	}
	logger.Info("evaluating", "every", *every)
	return ev.Run(ctx, *every)
}

// result is what an invocation returns (shown in the Lambda console).
type result struct {
	Rules       int `json:"rules"`
	Series      int `json:"series"`
	Transitions int `json:"transitions"`
	Notices     int `json:"notices"`
}

// handler runs one pass per scheduled event, and delivers what comes due
// until shortly before the invocation's deadline (at most 40 s), so a
// group window closing within the minute is sent in this invocation.
func handler(ev *evaluator.Evaluator, logger *slog.Logger) func(context.Context, events.EventBridgeEvent) (result, error) {
	return func(ctx context.Context, _ events.EventBridgeEvent) (result, error) {
		until := time.Now().Add(40 * time.Second)
		if dl, ok := ctx.Deadline(); ok && dl.Add(-5*time.Second).Before(until) {
			until = dl.Add(-5 * time.Second)
		}
		st, err := ev.Once(ctx, until)
		res := result{Rules: st.Rules, Series: st.Series, Transitions: st.Transitions, Notices: st.Notices}
		if err != nil && !errors.Is(err, context.Canceled) {
			// Failing the invocation shows in the function's error
			// metric; the next minute's run picks everything up.
			return res, fmt.Errorf("evaluate: %w", err)
		}
		logger.Info("evaluated", "rules", st.Rules, "series", st.Series, "transitions", st.Transitions, "lost", st.Lost, "notices", st.Notices)
		return res, nil
	}
}
