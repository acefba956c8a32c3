// Package servetest checks, with real sockets, that a running server
// applies shared/httpserve's bounds: a connection that sends nothing, half
// a header, or a header promising a body that never comes is closed by the
// server within the bound. The streamer, function and localdev tests share
// it.
package servetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/httpserve"
)

// margin is added to every bound before a connection still open counts as a
// failure. It is generous (the machine may be loaded); it only has to tell
// "closed after the bound" from "never closed".
const margin = 20 * time.Second

// AssertClosesSilent runs the three stalls against addr (host:port) in
// parallel and fails t for each connection the server has not closed within
// its bound plus a generous margin. method and path pick the route that gets
// the body-less request (e.g. POST /api/ingest, GET /healthz).
func AssertClosesSilent(t *testing.T, addr, method, path string) {
	t.Helper()
	cases := []struct {
		name  string
		send  string
		bound time.Duration
	}{
		{"silent connection", "", httpserve.ReadHeaderTimeout},
		{"half a header", method + " " + path + " HTTP/1.1\r\nHost: x\r\n", httpserve.ReadHeaderTimeout},
		{"Content-Length 1000 and no body", method + " " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", httpserve.BodyTimeout},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	for i, c := range cases {
		wg.Go(func() { errs[i] = closedWithin(addr, c.send, c.bound+margin) })
	}
	wg.Wait()
	for i, c := range cases {
		if errs[i] != nil {
			t.Errorf("%s (bound %s): %v", c.name, c.bound, errs[i])
		}
	}
}

// closedWithin sends send on a new connection and reads until the server
// closes it (EOF or reset), or the limit passes.
func closedWithin(addr, send string, limit time.Duration) error {
	var d net.Dialer
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close() //nolint:errcheck // the test is done with the connection
	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			return err
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		switch {
		case err == nil:
			continue // a response (e.g. 408 or the handler's answer); the close follows
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("still open after %s", limit)
		default:
			return nil // EOF or reset: the server closed it
		}
	}
}
