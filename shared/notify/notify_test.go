package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/notify"
)

func channel(t *testing.T, url string) alert.Channel {
	t.Helper()
	c, err := alert.DecodeChannel([]byte(`{"name":"x","url":"`+url+`"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWebhookSignedAndRedirectRefused(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			return
		}
		got, body = r, must(io.ReadAll(r.Body))
	}))
	defer srv.Close()
	n := notify.New("", nil)
	c := channel(t, "webhook+"+srv.URL+"/hook?token=s3cret")
	m := alert.Message{ID: "g1", Status: "firing", Rule: alert.Rule{Name: "down", Metric: "nodata"},
		Alerts: []alert.Alert{{ServerID: "web-1", Metric: "nodata", Value: 42}}}
	if err := n.Send(context.Background(), c, m); err != nil {
		t.Fatal(err)
	}
	ts := got.Header.Get(notify.HeaderTimestamp)
	var sec int64
	fmt.Sscan(ts, &sec)
	if got.Header.Get(notify.HeaderSignature) != notify.Sign(c.Secret, sec, body) || got.Header.Get(notify.HeaderDelivery) != "g1" {
		t.Fatalf("headers %v", got.Header)
	}
	if !strings.Contains(string(body), `"serverId":"web-1"`) || !strings.Contains(string(body), `"count":1`) {
		t.Fatalf("body %s", body)
	}
	err := n.Send(context.Background(), channel(t, "webhook+"+srv.URL+"/moved?token=s3cret"), m)
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "307") {
		t.Fatalf("redirect: %v", err)
	}
	err = n.Send(context.Background(), channel(t, "webhook+http://127.0.0.1:1/x?token=s3cret"), m)
	if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "127.0.0.1:1/x") {
		t.Fatalf("refused connection: %v", err)
	}
}

func TestCheckShoutrrrURLs(t *testing.T) {
	n := notify.New("", nil)
	if err := n.Check(channel(t, "ntfy://ntfy.sh/topic")); err != nil {
		t.Fatal(err)
	}
	err := n.Check(channel(t, "nosuchservice://tok3n@host/x"))
	if !errors.Is(err, metric.ErrInvalid) || strings.Contains(err.Error(), "tok3n") || !strings.HasPrefix(err.Error(), "url:") {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestTextOfAGroup(t *testing.T) {
	m := alert.Message{Status: "firing", Rule: alert.Rule{Name: "down", Metric: "nodata"}}
	for i := range 30 {
		m.Alerts = append(m.Alerts, alert.Alert{ServerID: fmt.Sprintf("h%02d", i), Value: 45})
	}
	title, text := notify.Text(m)
	if title != "[FIRING] down" || !strings.Contains(text, "30 series") || !strings.Contains(text, "and 5 more") || strings.Contains(text, "h29") {
		t.Fatalf("%q\n%s", title, text)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestWebhookRefusesLinkLocal(t *testing.T) {
	n := notify.New("", nil)
	m := alert.Message{ID: "g", Status: "test"}
	err := n.Send(context.Background(), channel(t, "webhook+http://169.254.169.254/latest/meta-data/"), m)
	if err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Fatalf("metadata address: %v", err)
	}
}
