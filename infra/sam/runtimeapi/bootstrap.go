package runtimeapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Run is one cold start of a bootstrap binary.
type Run struct {
	// Init is from process start to its first poll for work: the runtime
	// and main's setup (config, store connection).
	Init time.Duration
	// FirstResponse is from process start to the posted answer of the first
	// invocation: what a cold request waits for, minus Lambda's own
	// sandbox and code download time.
	FirstResponse time.Duration
	Result        Result
	// MaxRSS is the process's peak resident memory (0 where unknown).
	MaxRSS int64
	// Stderr is what the process logged.
	Stderr string
}

// RunBootstrap starts the bootstrap binary at path with env (plus
// AWS_LAMBDA_RUNTIME_API pointing at a fresh local Runtime API), hands it
// event, waits for its answer (at most timeout), then kills it, as Lambda
// would freeze it. A process that exits before answering is an error that
// quotes its stderr.
func RunBootstrap(ctx context.Context, path string, env []string, event []byte, timeout time.Duration) (Run, error) {
	api, err := Start()
	if err != nil {
		return Run{}, err
	}
	defer api.Close() //nolint:errcheck // test tool's fake Runtime API; a close error changes no result
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var stderr bytes.Buffer
	cmd := exec.Command(path)
	cmd.Env = append(env, "AWS_LAMBDA_RUNTIME_API="+api.Addr())
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Run{}, err
	}
	var exitErr error
	exitSeen := make(chan struct{})
	go func() {
		exitErr = cmd.Wait()
		close(exitSeen)
	}()
	invokeCtx, stopInvoke := context.WithCancel(ctx)
	defer stopInvoke()
	go func() {
		select {
		case <-exitSeen:
			stopInvoke() // nothing will answer any more
		case <-invokeCtx.Done():
		}
	}()

	res, invErr := api.Invoke(invokeCtx, event, timeout)
	run := Run{Result: res}
	if invErr == nil {
		run.FirstResponse = res.At.Sub(start)
		run.Init = api.FirstPoll().Sub(start)
	}
	// Done with it: a real sandbox would be frozen now.
	_ = cmd.Process.Kill()
	<-exitSeen
	run.MaxRSS = maxRSS(cmd.ProcessState)
	run.Stderr = stderr.String()
	if invErr != nil {
		select {
		case <-exitSeen:
			return run, fmt.Errorf("%s exited before answering (%w): %s", path, exitErr, strings.TrimSpace(run.Stderr))
		default:
		}
		if errors.Is(invErr, context.DeadlineExceeded) {
			return run, fmt.Errorf("%s did not answer within %s: %s", path, timeout, strings.TrimSpace(run.Stderr))
		}
		return run, invErr
	}
	return run, nil
}
