// Package functest runs a function's real main loop in a test: on a free
// port, with its JSON log captured, stopped by cancelling its context. The
// ingest and query functions' tests share it.
package functest

import (
	"context"
	"io"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/testlog"
)

// RunFunc is a function's run: the whole process minus os wiring.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Process is a running function.
type Process struct {
	// Addr is the host:port it listens on.
	Addr   string
	cancel context.CancelFunc
	done   chan error
	logs   testlog.Buffer
}

var addrRE = regexp.MustCompile(`"msg":"listening".*"addr":"([^"]+)"`)

// Start runs run with env (VITALS_ADDR defaults to a free loopback port)
// and returns once it logs the address it listens on; the test fails if it
// ends or has not listened within 20 s. Stop is registered as cleanup.
func Start(t *testing.T, run RunFunc, env map[string]string) *Process {
	t.Helper()
	get := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "VITALS_ADDR" {
			return "127.0.0.1:0"
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Process{cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, nil, get, os.Stdout, &p.logs) }()
	t.Cleanup(func() { cancel() })
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(p.Logs()); m != nil {
			p.Addr = m[1]
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("run ended early: %v; logs %s", err, p.Logs())
		default:
		}
	}
	t.Fatalf("never listened: %s", p.Logs())
	return nil
}

// Stop cancels the process's context and returns what run returned.
func (p *Process) Stop() error {
	p.cancel()
	return <-p.done
}

// Logs is everything the process logged so far.
func (p *Process) Logs() string { return p.logs.String() }
