package httpapi_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
)

// TestIngestBodyReadFailureIsRetryable: a body that stops arriving (the
// server's read deadline passes mid-body) is a 408, which the reporter
// retries keeping the batch, not a 400 "invalid data" that it drops.
func TestIngestBodyReadFailureIsRetryable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(e.ingest)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	body := gz(t, batch(t, 3, nil))
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ts := time.Now().Unix()
	head := "POST /api/ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/gzip\r\n" +
		auth.HeaderServer + ": " + e.server + "\r\n" +
		auth.HeaderTimestamp + ": " + strconv.FormatInt(ts, 10) + "\r\n" +
		auth.HeaderSignature + ": " + auth.Sign(e.key, ts, e.server, body) + "\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	// Half the body, then nothing: the read deadline ends the read.
	if _, err := conn.Write(append([]byte(head), body[:len(body)/2]...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
}
