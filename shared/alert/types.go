package alert

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// Channel is a notification target. URL and Secret are credentials: the
// store keeps them, the API shows them only in the answer to the create
// request (Public hides them), and nothing logs them.
type Channel struct {
	Name string `json:"name"`
	// URL is a shoutrrr URL (slack://…, ntfy://…) or webhook+http(s)://….
	URL string `json:"url,omitempty"`
	// Secret signs webhook bodies (X-Vitals-Signature); empty for others.
	Secret    string    `json:"secret,omitempty"`
	Kind      string    `json:"kind"`
	Target    string    `json:"target"`
	CreatedAt time.Time `json:"createdAt"`
}

// Public is the channel as every answer but the create one shows it:
// kind and a redacted target, no URL, no secret.
func (c Channel) Public() Channel {
	c.URL, c.Secret = "", ""
	return c
}

// IsWebhook reports whether the channel is a generic signed webhook.
func (c *Channel) IsWebhook() bool { return c.Kind == "webhook" }

// WebhookURL is the http(s) URL a webhook channel posts to.
func (c *Channel) WebhookURL() string { return strings.TrimPrefix(c.URL, "webhook+") }

var channelName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// ValidChannelName reports whether s can name a channel (it appears in
// URLs and rules): 1-64 of a-z, 0-9, '-', '_'.
func ValidChannelName(s string) bool { return channelName.MatchString(s) }

// DecodeChannel parses and checks a channel body {"name","url"}: the name,
// and that url is webhook+http(s):// with a host or some other scheme
// (which the notifier then checks as a shoutrrr URL). For a webhook a new
// secret is made. Errors are ErrInvalid naming the field and never echo
// the URL, which carries credentials.
func DecodeChannel(body []byte, now time.Time) (Channel, error) {
	var in struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	}
	if err := decodeStrict(body, &in); err != nil {
		return Channel{}, err
	}
	if !ValidChannelName(in.Name) {
		return Channel{}, invalid("name", "required: 1-64 of a-z, 0-9, '-', '_'")
	}
	c := Channel{Name: in.Name, URL: strings.TrimSpace(in.URL), CreatedAt: now.UTC().Truncate(time.Second)}
	if c.URL == "" {
		return Channel{}, invalid("url", "required: a shoutrrr URL (slack://…, ntfy://…) or webhook+https://…")
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Scheme == "" || len(c.URL) > 2048 {
		return Channel{}, invalid("url", "not a URL (a shoutrrr URL such as ntfy://ntfy.sh/topic, or webhook+https://host/path)")
	}
	switch u.Scheme {
	case "webhook+http", "webhook+https":
		if u.Host == "" {
			return Channel{}, invalid("url", "a webhook URL needs a host: webhook+https://host/path")
		}
		c.Kind = "webhook"
		c.Target = u.Scheme + "://" + u.Host + "/…"
		c.Secret = newSecret()
	case "http", "https":
		return Channel{}, invalid("url", "use webhook+%s://… for a generic webhook", u.Scheme)
	default:
		c.Kind = u.Scheme
		// A shoutrrr URL keeps tokens in the user, host and path alike
		// (slack://token@channel, pushover://:token@user), so only the
		// service is shown.
		c.Target = u.Scheme + "://…"
	}
	return c, nil
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewID returns a random id for a rule, silence or delivery group.
func NewID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Silence suppresses notifications for matching alerts until Until; the
// alerts' state is still kept and shown.
type Silence struct {
	ID string `json:"id"`
	// Servers selects servers by id or glob (["*"] for all).
	Servers []string `json:"servers"`
	// Rules are rule ids or names; empty means every rule.
	Rules     []string  `json:"rules"`
	Until     time.Time `json:"until"`
	Comment   string    `json:"comment"`
	CreatedAt time.Time `json:"createdAt"`
}

// DecodeSilence parses and checks a silence body.
func DecodeSilence(body []byte, now time.Time) (Silence, error) {
	var s Silence
	if err := decodeStrict(body, &s); err != nil {
		return Silence{}, err
	}
	s.ID, s.CreatedAt = "", now.UTC().Truncate(time.Second)
	if err := checkSelectors("servers", s.Servers, true); err != nil {
		return Silence{}, err
	}
	if len(s.Rules) > maxSelectors {
		return Silence{}, invalid("rules", "at most %d", maxSelectors)
	}
	for i, r := range s.Rules {
		if r == "" || len(r) > maxNameLen {
			return Silence{}, invalid(fmt.Sprintf("rules[%d]", i), "must be a rule id or name")
		}
	}
	if s.Rules == nil {
		s.Rules = []string{}
	}
	switch {
	case s.Until.IsZero():
		return Silence{}, invalid("until", "required: an RFC 3339 time")
	case !s.Until.After(now):
		return Silence{}, invalid("until", "must be in the future")
	case len(s.Comment) > 1000:
		return Silence{}, invalid("comment", "at most 1000 characters")
	}
	s.Until = s.Until.UTC()
	return s, nil
}

// Silences reports whether s silences the series of rule r on serverID
// at now.
func (s *Silence) Silences(r *Rule, serverID string, now time.Time) bool {
	if !now.Before(s.Until) || !matchAny(s.Servers, serverID) {
		return false
	}
	return len(s.Rules) == 0 || slices.Contains(s.Rules, r.ID) || slices.Contains(s.Rules, r.Name)
}

// State is where an alert series is in its life.
type State string

// The states of a series. A series with no stored state is ok.
const (
	StatePending  State = "pending"
	StateFiring   State = "firing"
	StateResolved State = "resolved"
	// StateOK is never stored: live events (the streamer's "alert"
	// frames) carry it when a series returns to ok without resolving, a
	// pending alert whose condition cleared before "for" or the series of
	// a deleted rule, so viewers drop it.
	StateOK State = "ok"
)

// OKEvent is the live event of series key returning to ok without a
// resolve: state "ok" and the rule, server and instance ids the key names.
func OKEvent(key string) Alert {
	a := Alert{Key: key, State: StateOK}
	parts := strings.SplitN(key, "/", 3)
	a.RuleID = parts[0]
	if len(parts) > 1 {
		a.ServerID = parts[1]
	}
	if len(parts) > 2 {
		a.InstanceID = parts[2]
	}
	return a
}

// Alert is one series (rule × server, or rule × instance) that is not ok,
// or was resolved recently.
type Alert struct {
	// Key identifies the series: ruleID/serverID[/instanceID].
	Key          string `json:"key"`
	RuleID       string `json:"ruleId"`
	Rule         string `json:"rule"`
	ServerID     string `json:"serverId"`
	InstanceID   string `json:"instanceId,omitempty"`
	InstanceName string `json:"instanceName,omitempty"`
	Metric       string `json:"metric"`
	State        State  `json:"state"`
	// Since is when the series entered State.
	Since time.Time `json:"since"`
	// StartsAt is when the condition began to hold (pending) or the
	// alert fired (firing, resolved); EndsAt when it resolved.
	StartsAt time.Time  `json:"startsAt"`
	EndsAt   *time.Time `json:"endsAt,omitempty"`
	// Value is the metric's value at the last transition; for a no-data
	// alert, the seconds since the series last reported.
	Value float64 `json:"value"`
	// NotifiedAt is the last firing notification (for repeats).
	NotifiedAt time.Time `json:"notifiedAt,omitzero"`
	// Version increases on every stored change; evaluators compare and
	// set on it so exactly one of them makes each transition.
	Version int64 `json:"version"`
	// Silenced is computed when listing.
	Silenced bool `json:"silenced,omitempty"`
}

// SeriesKey is the key of a rule's series on a server (instanceID "" for
// the server itself).
func SeriesKey(ruleID, serverID, instanceID string) string {
	k := ruleID + "/" + serverID
	if instanceID != "" {
		k += "/" + instanceID
	}
	return k
}

// Series names the series for people: "web-1" or "web-1/nginx".
func (a *Alert) Series() string {
	if a.InstanceID == "" {
		return a.ServerID
	}
	n := a.InstanceName
	if n == "" {
		n = a.InstanceID
	}
	return a.ServerID + "/" + n
}

// Delivery is one attempt to deliver a message to a channel.
type Delivery struct {
	// Group is the message's id (X-Vitals-Delivery on webhooks): the same
	// across retries of one message, so receivers can drop a re-sent one.
	Group   string    `json:"group"`
	Attempt int       `json:"attempt"`
	Channel string    `json:"channel"`
	RuleID  string    `json:"ruleId,omitempty"`
	Rule    string    `json:"rule,omitempty"`
	Status  string    `json:"status"`
	Series  []string  `json:"series"`
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	// Error says why the attempt failed, with every URL removed.
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
	// NextAt is when the next attempt is due, after a failure.
	NextAt *time.Time `json:"nextAt,omitempty"`
}

// ServerIDs of a delivery's series ("web-1/nginx" → "web-1").
func (d *Delivery) ServerIDs() []string {
	out := make([]string, 0, len(d.Series))
	for _, s := range d.Series {
		id, _, _ := strings.Cut(s, "/")
		out = append(out, id)
	}
	return out
}

var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://\S*`)

// Scrub removes URLs from an error text: a channel URL carries
// credentials, and HTTP client errors quote the URL they failed on.
func Scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "<redacted>")
		}
	}
	msg = urlInText.ReplaceAllString(msg, "<url>")
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return msg
}

// Heartbeat is what the evaluator knows of a server's liveness: the
// collectedAt of its newest sample and the reporting interval it announced
// (0 when it never did).
type Heartbeat struct {
	ServerID string
	LastSeen time.Time
	Interval time.Duration
}

// InstanceBeat is a live instance's newest reading time.
type InstanceBeat struct {
	ID       string
	Name     string
	ServerID string
	LastSeen time.Time
}

// Exists is the error of creating a channel whose name is taken: the API
// has no 409 kind, and a name taken is a fault of the request.
func Exists(what, name string) error {
	return metric.Errorf(metric.ErrInvalid, "name: a %s named %q exists; delete it first", what, name)
}
