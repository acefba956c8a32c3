// Package notify delivers alert messages: the generic signed webhook
// (webhook+http(s)://…) itself, and every other channel through
// github.com/nicholas-fedor/shoutrrr (Slack, Discord, Telegram, Teams,
// ntfy, Gotify, Pushover, SMTP, …), the maintained fork Beszel uses.
//
// Channel URLs carry credentials: no error this package returns contains
// one (alert.Scrub is applied), and it logs nothing.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nicholas-fedor/shoutrrr"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Headers of a webhook request, as ingest's.
const (
	HeaderTimestamp = "X-Vitals-Timestamp"
	HeaderSignature = "X-Vitals-Signature"
	// HeaderDelivery is the message id, the same on every retry, so a
	// receiver can drop a message it already handled (delivery is at
	// least once).
	HeaderDelivery = "X-Vitals-Delivery"
)

// Notifier sends messages. Safe for concurrent use.
type Notifier struct {
	client    *http.Client
	publicURL string
	now       func() time.Time
}

// New returns a Notifier. publicURL, when set (VITALS_PUBLIC_URL), is
// where messages link to (the live view); now is the clock (time.Now
// when nil).
func New(publicURL string, now func() time.Time) *Notifier {
	if now == nil {
		now = time.Now
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: refuseLinkLocal}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	return &Notifier{
		client: &http.Client{
			Transport: tr,
			Timeout:   30 * time.Second, // the context usually ends first
			// A redirect is a receiver misconfiguration: fail visibly
			// rather than post the signed body somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		publicURL: strings.TrimRight(publicURL, "/"),
		now:       now,
	}
}

// refuseLinkLocal keeps webhooks off link-local addresses and AWS's IPv6
// metadata address: that is where cloud metadata services answer
// (169.254.169.254, fd00:ec2::254), and whoever may write channels must
// not be able to make the evaluator post there. Checked on the resolved
// address, so a DNS name pointing there is refused too. Other private
// addresses stay allowed: an internal webhook receiver is a normal setup.
var awsMetadataV6 = netip.MustParseAddr("fd00:ec2::254")

func refuseLinkLocal(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip == awsMetadataV6) {
		return errors.New("webhook to a link-local address refused")
	}
	return nil
}

// Check says why c cannot be sent to, without echoing its URL: a webhook
// needs an http(s) host; any other URL must be one shoutrrr knows.
func (n *Notifier) Check(c alert.Channel) error {
	if c.IsWebhook() {
		u, err := url.Parse(c.WebhookURL())
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return metric.Errorf(metric.ErrInvalid, "url: not a webhook+http(s):// URL with a host")
		}
		return nil
	}
	if _, err := shoutrrr.CreateSender(c.URL); err != nil {
		return metric.Errorf(metric.ErrInvalid, "url: not a valid %q notification URL (see https://shoutrrr.nickfedor.com/services/overview/): %s", c.Kind, alert.Scrub(err.Error(), c.URL))
	}
	return nil
}

// Send delivers m to c once, within ctx.
func (n *Notifier) Send(ctx context.Context, c alert.Channel, m alert.Message) error {
	var err error
	if c.IsWebhook() {
		err = n.webhook(ctx, c, m)
	} else {
		err = n.shoutrrr(ctx, c, m)
	}
	if err != nil {
		return errors.New(alert.Scrub(err.Error(), c.URL, c.Secret))
	}
	return nil
}

// WebhookAlert is one series in a webhook message.
type WebhookAlert struct {
	ServerID     string     `json:"serverId"`
	InstanceID   string     `json:"instanceId"`
	InstanceName string     `json:"instanceName,omitempty"`
	Metric       string     `json:"metric"`
	Value        float64    `json:"value"`
	StartsAt     time.Time  `json:"startsAt"`
	EndsAt       *time.Time `json:"endsAt"`
	URL          string     `json:"url"`
}

// WebhookBody is the JSON a webhook channel receives. The top-level
// series fields are those of the first alert (issue 13's single-alert
// shape, so a receiver written for one alert works unchanged); Alerts
// lists every series of a grouped message, the first included, and Count
// is its length. A test message has status "test" and no alerts.
type WebhookBody struct {
	Status string     `json:"status"`
	Rule   alert.Rule `json:"rule"`
	WebhookAlert
	Group  string         `json:"group"`
	Count  int            `json:"count"`
	Alerts []WebhookAlert `json:"alerts"`
}

// Body builds the webhook JSON of m.
func (n *Notifier) Body(m alert.Message) WebhookBody {
	b := WebhookBody{Status: m.Status, Rule: m.Rule, Group: m.ID, Count: len(m.Alerts), Alerts: make([]WebhookAlert, 0, len(m.Alerts))}
	if b.Rule.Channels == nil {
		b.Rule.Channels = []string{}
	}
	for _, a := range m.Alerts {
		b.Alerts = append(b.Alerts, WebhookAlert{ServerID: a.ServerID, InstanceID: a.InstanceID, InstanceName: a.InstanceName,
			Metric: a.Metric, Value: a.Value, StartsAt: a.StartsAt, EndsAt: a.EndsAt, URL: n.link(a.ServerID)})
	}
	if len(b.Alerts) > 0 {
		b.WebhookAlert = b.Alerts[0]
	} else {
		b.Metric = m.Rule.Metric
	}
	return b
}

func (n *Notifier) link(serverID string) string {
	if n.publicURL == "" || serverID == "" {
		return ""
	}
	return n.publicURL + "/#server=" + url.QueryEscape(serverID)
}

// Sign is the X-Vitals-Signature of body sent at ts with secret:
// v1=<hex HMAC-SHA256(secret, ts + "\n" + body)>.
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte("\n"))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

func (n *Notifier) webhook(ctx context.Context, c alert.Channel, m alert.Message) error {
	// No HTML escaping: receivers read "op": ">" as written, not "\u003e".
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(n.Body(m)); err != nil {
		return fmt.Errorf("encode webhook body: %w", err)
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.WebhookURL(), bytes.NewReader(body))
	if err != nil {
		return errors.New("webhook: bad URL")
	}
	ts := n.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vitals-alerts/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(c.Secret, ts, body))
	req.Header.Set(HeaderDelivery, m.ID)
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the URL
		}
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close() //nolint:errcheck // drained below; a close error changes no delivery result
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

func (n *Notifier) shoutrrr(ctx context.Context, c alert.Channel, m alert.Message) error {
	sender, err := shoutrrr.CreateSender(c.URL)
	if err != nil {
		return fmt.Errorf("%s: bad notification URL", c.Kind)
	}
	if dl, ok := ctx.Deadline(); ok {
		sender.Timeout = max(time.Until(dl), time.Second)
	}
	title, text := Text(m)
	params := types.Params{"title": title}
	done := make(chan []error, 1)
	go func() { done <- sender.Send(text, &params) }()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", c.Kind, ctx.Err())
	case errs := <-done:
		for _, e := range errs {
			if e != nil {
				return fmt.Errorf("%s: %w", c.Kind, e)
			}
		}
		return nil
	}
}

// maxLines bounds the series a text message lists.
const maxLines = 25

// Text is the title and body of m for chat and push services.
func Text(m alert.Message) (title, body string) {
	status := strings.ToUpper(m.Status)
	if m.Status == "test" {
		return "[TEST] Vitals", "Test message from Vitals: this channel works."
	}
	title = fmt.Sprintf("[%s] %s", status, m.Rule.Name)
	var b strings.Builder
	if len(m.Alerts) == 1 {
		a := m.Alerts[0]
		fmt.Fprintf(&b, "%s %s: %s", title, a.Series(), describe(m.Rule, a))
		return title, b.String()
	}
	fmt.Fprintf(&b, "%s: %d series\n", title, len(m.Alerts))
	for i, a := range m.Alerts {
		if i == maxLines {
			fmt.Fprintf(&b, "… and %d more\n", len(m.Alerts)-maxLines)
			break
		}
		fmt.Fprintf(&b, "- %s: %s\n", a.Series(), describe(m.Rule, a))
	}
	return title, strings.TrimRight(b.String(), "\n")
}

func describe(r alert.Rule, a alert.Alert) string {
	when := a.StartsAt.UTC().Format(time.RFC3339)
	if a.EndsAt != nil {
		when = "resolved " + a.EndsAt.UTC().Format(time.RFC3339)
	} else {
		when = "since " + when
	}
	if r.IsNoData() {
		return fmt.Sprintf("no data for %gs (%s)", a.Value, when)
	}
	v := ""
	if r.Value != nil {
		v = fmt.Sprintf(" (%s %g)", r.Op, *r.Value)
	}
	return fmt.Sprintf("%s = %g%s, %s", r.Metric, a.Value, v, when)
}
