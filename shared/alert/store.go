package alert

import (
	"context"
	"slices"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// ResolvedKept is how long GET /api/alerts lists resolved alerts.
const ResolvedKept = 7 * 24 * time.Hour

// Store keeps rules, channels, silences, alert state and the delivery
// queue. Implementations are safe for concurrent use by any number of
// processes (evaluators, API handlers) at once. Errors are metric kinds:
// ErrNotFound for an unknown id or name, ErrInvalid for a name taken,
// ErrUnavailable when the backend does not answer; others are internal.
type Store interface {
	// CreateRule stores r under a new id and returns it.
	CreateRule(ctx context.Context, r Rule) (Rule, error)
	// Rule returns one rule.
	Rule(ctx context.Context, id string) (Rule, error)
	// Rules lists every rule, sorted by name then id.
	Rules(ctx context.Context) ([]Rule, error)
	// PutRule replaces the rule with r.ID.
	PutRule(ctx context.Context, r Rule) error
	// DeleteRule removes a rule; its alerts are dropped by the next
	// evaluation, without notifications.
	DeleteRule(ctx context.Context, id string) error

	// CreateChannel stores c (URL and secret included).
	CreateChannel(ctx context.Context, c Channel) error
	// Channel returns one channel with its credentials, for sending.
	Channel(ctx context.Context, name string) (Channel, error)
	// Channels lists every channel with its credentials, sorted by name;
	// callers show only Public().
	Channels(ctx context.Context) ([]Channel, error)
	// DeleteChannel removes a channel; messages queued for it are dropped
	// when they come due.
	DeleteChannel(ctx context.Context, name string) error

	// CreateSilence stores s under a new id and returns it.
	CreateSilence(ctx context.Context, s Silence) (Silence, error)
	// Silences lists the silences that have not ended at now.
	Silences(ctx context.Context, now time.Time) ([]Silence, error)
	// DeleteSilence ends a silence at once.
	DeleteSilence(ctx context.Context, id string) error

	// Alerts lists pending and firing alerts and those resolved within
	// ResolvedKept of now, newest first.
	Alerts(ctx context.Context, now time.Time) ([]Alert, error)
	// Deliveries lists the latest delivery attempts, newest first.
	Deliveries(ctx context.Context, limit int) ([]Delivery, error)
	// RecordDelivery appends one attempt to the delivery log.
	RecordDelivery(ctx context.Context, d Delivery) error

	// Load reads what an evaluation pass needs of the alert side, as of
	// one instant: rules, active silences and the state of every series
	// that is not ok, with Seq, the version counter at that instant.
	Load(ctx context.Context, now time.Time) (Pass, error)
	// Transition applies t if no other writer changed t.Key since the
	// Load whose Seq t carries (compare-and-set): it stores the new state,
	// adds the resolved alert to the history and queues each notice, all
	// at once or not at all. It reports whether t was applied.
	Transition(ctx context.Context, t Transition) (bool, error)
	// Claim takes up to max queued messages due at now and hides them
	// from other claimers until now+lease; a message not finished or
	// retried by then is claimed again (at-least-once delivery).
	Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]Message, error)
	// Finish removes a delivered (or abandoned) message and records d.
	Finish(ctx context.Context, m Message, d Delivery) error
	// Retry records the failed attempt d and makes m due again at at.
	Retry(ctx context.Context, m Message, d Delivery, at time.Time) error
	// NextDue is when the earliest queued message comes due (zero if none).
	NextDue(ctx context.Context) (time.Time, error)
}

// CheckChannels reports the first of r's channels that st does not have
// (ErrInvalid naming "channels[i]"): a rule naming a missing channel
// would notify no one. The REST API and vitalsctl both check rules with it.
func CheckChannels(ctx context.Context, st Store, r *Rule) error {
	if len(r.Channels) == 0 {
		return nil
	}
	chans, err := st.Channels(ctx)
	if err != nil {
		return err
	}
	for i, name := range r.Channels {
		if !slices.ContainsFunc(chans, func(ch Channel) bool { return ch.Name == name }) {
			return metric.Errorf(metric.ErrInvalid, "channels[%d]: no channel named %q (create it first: POST /api/alerts/channels or vitalsctl alert channel add)", i, name)
		}
	}
	return nil
}

// Pass is the alert side of one evaluation pass.
type Pass struct {
	Rules    []Rule
	Silences []Silence
	// States holds every pending and firing series by key.
	States map[string]Alert
	// Seq is the version counter when States was read.
	Seq int64
}

// Transition is one evaluator's decision about one series.
type Transition struct {
	Key string
	// Seq is the Pass.Seq the decision was made on.
	Seq int64
	// To is the new stored state; nil returns the series to ok.
	To *Alert
	// Resolved, when set, goes into the resolved history.
	Resolved *Alert
	// Notices are queued for delivery, one per channel.
	Notices []Notice
}

// Notice is one alert's transition, queued for one channel. Notices of
// the same rule, channel and status whose group is still open join one
// message, due Window after the first one's At.
type Notice struct {
	Channel string
	Rule    Rule
	Status  string // "firing" or "resolved"
	At      time.Time
	Alert   Alert
}

// Message is a queued (possibly grouped) notification for one channel.
type Message struct {
	ID      string
	Channel string
	Rule    Rule
	Status  string
	Alerts  []Alert
	// Attempt counts claims, this one included.
	Attempt int
}
