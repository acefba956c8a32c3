package streamer_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/streamer"
)

// FuzzWebSocketCommand sends any text frame from an authenticated client
// (scoped to one server) to a real streamer on a real Redis. Every frame
// gets answers that are "ok", "pong", a JSON document or "error: …", all
// valid UTF-8 (a browser closes the socket on a text frame that is not),
// and the socket still answers "ping" afterwards.
//
//	go test -run '^$' -fuzz FuzzWebSocketCommand -fuzztime 60s ./streamer/
func FuzzWebSocketCommand(f *testing.F) {
	e := newEnv(f, streamer.Config{})
	e.ingest("web-1", sample(time.Now(), 10))
	in := metric.InstanceUUID("web-1", "app")
	for _, seed := range []string{
		"", " ", "ping", "PING", "stats", "servers", "sysinfo", "sysinfo web-1", "sysinfo db-1",
		"sysinfo a b", "sysinfo {x}", "subscribe server web-1", "subscribe server db-1",
		"subscribe instance " + in, "subscribe instance not-a-uuid", "subscribe planet x",
		"unsubscribe server web-1", "unsubscribe", "auth", "auth x.y.z", "auth a b",
		"frobnicate", "sysinfo \xff\xfe", "subscribe \xffserver web-1", strings.Repeat("é", 40) + "\xc3",
		"subscribe server " + strings.Repeat("a", 300),
	} {
		f.Add(seed)
	}
	tok := token(f, "web-1")
	f.Fuzz(func(t *testing.T, msg string) {
		c := e.dialFor(t)
		c.auth(tok)
		c.send(msg)
		checkReply(t, msg, c.read())
		// A subscribe's "ok" is followed by a push; read up to the pong.
		c.send("ping")
		for range 4 {
			r := c.read()
			if r == "pong" {
				return
			}
			checkReply(t, msg, r)
		}
		t.Fatalf("after %q: no pong", msg)
	})
}

func checkReply(t *testing.T, msg, reply string) {
	t.Helper()
	if !utf8.ValidString(reply) {
		t.Fatalf("%q: reply is not UTF-8: %q", msg, reply)
	}
	switch {
	case reply == "ok", reply == "pong", strings.HasPrefix(reply, "error: "):
	case strings.HasPrefix(reply, "{") && json.Valid([]byte(reply)):
	default:
		t.Fatalf("%q: unexpected reply %q", msg, reply)
	}
}
