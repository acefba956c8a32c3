package streamer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/streamer"
)

// TestInstanceOwnerChangeEndsLiveView: an instance that moves to another
// server (an operator rebinds it, or its deriving server takes it back)
// stops flowing to viewers whose access came from the old owner. The
// WebSocket subscription is dropped with an error naming the instance, the
// SSE stream ends, and neither carries a sample of the new owner; a fresh
// subscribe checks access again.
func TestInstanceOwnerChangeEndsLiveView(t *testing.T) {
	e := newEnv(t, streamer.Config{SSEInterval: time.Hour})
	ctx := context.Background()
	const id = "0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f"
	ingest := func(server string, at time.Time, cpu float64) {
		t.Helper()
		s := sample(at, 10)
		s.Instances[0].InstanceID, s.Instances[0].Name, s.Instances[0].CPUUsagePercent = id, "db", cpu
		res, err := e.store.Ingest(ctx, server, []metric.Sample{s})
		if err != nil || res.Accepted != 1 || res.InstancesRefused != 0 {
			t.Fatalf("ingest %s: %+v %v", server, res, err)
		}
	}
	if _, err := e.store.Bind(ctx, "web-2", id, "db"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	ingest("web-2", t0, 1)

	c := e.dial()
	c.auth(token(t, "web-2"))
	if got := c.ask("subscribe instance " + id); got != "ok" {
		t.Fatalf("subscribe: %q", got)
	}
	c.waitPush(t0)
	resp, stream := e.sse("/api/instances/"+id+"/monitoring/metrics/stream", token(t, "web-2"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSE status %d", resp.StatusCode)
	}
	stream.nextData(t)
	ch := e.store.InstanceChannel(id)
	eventually(t, "redis subscription", func() bool {
		n, err := e.store.Client().PubSubNumSub(ctx, ch).Result()
		return err == nil && n[ch] == 1
	})
	// A live sample of the owner reaches both: both follow the topic.
	ingest("web-2", t0.Add(5*time.Second), 2)
	c.waitPush(t0.Add(5 * time.Second))
	if ev := stream.nextData(t); !strings.Contains(ev.data, `"cpuUsagePercent":2`) {
		t.Fatalf("SSE live sample: %s", ev.data)
	}

	if prev, err := e.store.Bind(ctx, "rep-1", id, "db"); err != nil || prev != "web-2" {
		t.Fatalf("rebind: %q %v", prev, err)
	}
	ingest("rep-1", t0.Add(10*time.Second), 77)

	got := c.read()
	if strings.Contains(got, "rep-1") || got != "error: instance "+id+" changed owner; subscribe again" {
		t.Fatalf("websocket after the move: %q", got)
	}
	// The subscription is gone: the next sample is not sent either.
	ingest("rep-1", t0.Add(20*time.Second), 78)
	if got := c.ask("ping"); got != "pong" {
		t.Fatalf("websocket after the move: %q", got)
	}
	if got := c.ask("subscribe instance " + id); !strings.HasPrefix(got, "error: ") {
		t.Fatalf("subscribe again with the old owner's token: %q", got)
	}

	done := make(chan error, 1)
	go func() {
		for {
			ev, err := stream.next()
			if err != nil {
				done <- err
				return
			}
			if strings.Contains(ev.data, "rep-1") {
				done <- errors.New("SSE sent the new owner's sample: " + ev.data)
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("SSE after the move: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("SSE stream still open after the move")
	}

	// The new owner's viewer gets the new owner's data, never a cached
	// frame of the old one.
	c2 := e.dial()
	c2.auth(token(t, "rep-1"))
	if got := c2.ask("subscribe instance " + id); got != "ok" {
		t.Fatalf("new owner subscribe: %q", got)
	}
	p := c2.readPush()
	var m struct {
		ServerID string `json:"serverId"`
	}
	if err := json.Unmarshal(p.Metric, &m); err != nil || m.ServerID != "rep-1" {
		t.Fatalf("new owner's first push: %s %v", p.Metric, err)
	}
}

// TestInstanceTakenBackEndsLiveView: a derived instance id that web-2
// claimed before ownership was enforced (a claim stored by older code) is
// taken back by the server it derives from at its first report; web-2's
// live viewer gets none of rep-1's samples.
func TestInstanceTakenBackEndsLiveView(t *testing.T) {
	e := newEnv(t, streamer.Config{})
	ctx := context.Background()
	owned := metric.InstanceUUID("rep-1", "postgres")
	// The claim as the code before bindings stored it.
	if err := e.store.Client().HSet(ctx, e.prefix+"instances", owned, `{"s":"web-2","n":"postgres"}`).Err(); err != nil {
		t.Fatal(err)
	}
	ingest := func(server string, at time.Time, cpu float64) {
		t.Helper()
		s := sample(at, 10)
		s.Instances[0].InstanceID, s.Instances[0].Name, s.Instances[0].CPUUsagePercent = owned, "postgres", cpu
		res, err := e.store.Ingest(ctx, server, []metric.Sample{s})
		if err != nil || res.Accepted != 1 || res.InstancesRefused != 0 {
			t.Fatalf("ingest %s: %+v %v", server, res, err)
		}
	}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	ingest("web-2", t0, 1)
	c := e.dial()
	c.auth(token(t, "web-2"))
	if got := c.ask("subscribe instance " + owned); got != "ok" {
		t.Fatalf("subscribe: %q", got)
	}
	c.waitPush(t0)
	ch := e.store.InstanceChannel(owned)
	eventually(t, "redis subscription", func() bool {
		n, err := e.store.Client().PubSubNumSub(ctx, ch).Result()
		return err == nil && n[ch] == 1
	})
	ingest("rep-1", t0.Add(10*time.Second), 77)
	if got := c.read(); got != "error: instance "+owned+" changed owner; subscribe again" {
		t.Fatalf("websocket after the take-back: %q", got)
	}
	if got := c.ask("ping"); got != "pong" {
		t.Fatalf("after the take-back: %q", got)
	}
}
