// Package alert is the alerting domain: rules (threshold and no-data),
// notification channels, silences, the state of each alerting series
// (ok → pending → firing → resolved), delivery records, their validation
// and the Store contract a backend implements.
//
// Like shared/metric it imports only the standard library (and metric for
// error kinds and field names), so handlers, the evaluator and the Redis
// store can all depend on it.
package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"strings"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// NoData is the metric name of a no-data rule.
const NoData = "nodata"

// Defaults and bounds of rule fields.
const (
	// DefaultGroupWindow is how long a channel's message for a rule waits
	// for more series to join it after the first one's transition.
	DefaultGroupWindow = 30 * time.Second
	MaxGroupWindow     = 10 * time.Minute
	MinRepeat          = time.Minute
	MaxFor             = 7 * 24 * time.Hour
	// MaxBody bounds a rule, channel or silence body, over the API and
	// from vitalsctl alike.
	MaxBody      = 64 << 10
	maxNameLen   = 100
	maxSelectors = 100
)

// Op is a threshold comparison.
type Op string

// The comparisons a threshold rule may use.
const (
	OpGT Op = ">"
	OpGE Op = ">="
	OpLT Op = "<"
	OpLE Op = "<="
)

// Holds reports whether v op threshold.
func (o Op) Holds(v, threshold float64) bool {
	switch o {
	case OpGT:
		return v > threshold
	case OpGE:
		return v >= threshold
	case OpLT:
		return v < threshold
	case OpLE:
		return v <= threshold
	}
	return false
}

// Duration is a time.Duration written in JSON as "30s", "2m", "1h" or "7d".
type Duration time.Duration

// MarshalJSON writes the duration as metric.FormatDuration does ("0s" for 0).
func (d Duration) MarshalJSON() ([]byte, error) {
	if d == 0 {
		return []byte(`"0s"`), nil
	}
	return json.Marshal(metric.FormatDuration(time.Duration(d)))
}

// badDuration marks a value that did not parse; Validate names its field
// (encoding/json does not say which field a custom decoder failed on).
const badDuration = Duration(-1)

// UnmarshalJSON reads "30s"-style strings; "0s" and "0" mean zero.
// Anything else leaves the duration negative, which Validate refuses.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	*d = badDuration
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	if s == "0" || s == "0s" {
		*d = 0
		return nil
	}
	if v, err := metric.ParseDuration(s); err == nil && v%time.Second == 0 {
		*d = Duration(v)
	}
	return nil
}

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Rule is an alert rule, as sent to and returned by /api/alerts/rules.
// A threshold rule compares Metric with Value; a no-data rule (Metric
// "nodata") fires when a series has sent nothing for For beyond its own
// reporting interval.
type Rule struct {
	// ID is assigned by the store on create.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Metric is a numeric JSON field of metric.ServerMetric, or of
	// metric.InstanceMetric when Instances is set, or "nodata".
	Metric string `json:"metric"`
	// Op and Value: the firing condition of a threshold rule.
	Op    Op       `json:"op,omitempty"`
	Value *float64 `json:"value,omitempty"`
	// Clear, when set, is the value the metric must pass back over before
	// a firing alert resolves (hysteresis): for ">" it resolves once the
	// metric is no longer > Clear.
	Clear *float64 `json:"clear,omitempty"`
	// For is how long the condition must hold before the alert fires.
	For Duration `json:"for"`
	// Servers selects servers by id or *-glob ("web-*", "*").
	Servers []string `json:"servers"`
	// Instances, when set, makes the rule about instances of the selected
	// servers, chosen by name, name glob or id.
	Instances []string `json:"instances,omitempty"`
	// Channels are notified of every transition (names of Channel).
	Channels []string `json:"channels"`
	// Repeat re-notifies a still-firing alert this often (0: never).
	Repeat Duration `json:"repeat,omitempty"`
	// Group is the storm-grouping window (nil: DefaultGroupWindow, "0s":
	// one message per series).
	Group *Duration `json:"group,omitempty"`
}

// IsNoData reports whether r is a no-data rule.
func (r *Rule) IsNoData() bool { return r.Metric == NoData }

// GroupWindow is the rule's storm-grouping window.
func (r *Rule) GroupWindow() time.Duration {
	if r.Group == nil {
		return DefaultGroupWindow
	}
	return r.Group.D()
}

// ForInstances reports whether the rule is about instances.
func (r *Rule) ForInstances() bool { return len(r.Instances) > 0 }

// Firing reports whether v keeps or puts a series of a threshold rule in
// the alerting condition: wasFiring selects the clear threshold.
func (r *Rule) Firing(v float64, wasFiring bool) bool {
	if r.Value == nil {
		return false
	}
	if wasFiring && r.Clear != nil {
		return r.Op.Holds(v, *r.Clear)
	}
	return r.Op.Holds(v, *r.Value)
}

// MatchServer reports whether the rule's server selectors select id.
func (r *Rule) MatchServer(id string) bool { return matchAny(r.Servers, id) }

// MatchInstance reports whether the rule's instance selectors select an
// instance by its id or name.
func (r *Rule) MatchInstance(id, name string) bool {
	return matchAny(r.Instances, id) || matchAny(r.Instances, name)
}

func matchAny(sels []string, s string) bool {
	for _, sel := range sels {
		if sel == s {
			return true
		}
		if ok, _ := path.Match(sel, s); ok {
			return true
		}
	}
	return false
}

// isGlob reports whether sel has path.Match metacharacters.
func isGlob(sel string) bool { return strings.ContainsAny(sel, `*?[\`) }

// OnlyServers reports whether every server the rule can ever select is
// one for which canRead is true: a scoped token may see the rule only
// then. A glob can select servers not yet enrolled, so only a token that
// may read "*" sees glob rules.
func OnlyServers(sels []string, canRead func(string) bool) bool {
	if canRead("*") {
		return true
	}
	for _, s := range sels {
		if isGlob(s) || !canRead(s) {
			return false
		}
	}
	return len(sels) > 0
}

// DecodeRule parses and validates a rule body. Errors are ErrInvalid
// naming the field. The id in the body, if any, is ignored.
func DecodeRule(body []byte) (Rule, error) {
	var r Rule
	if err := decodeStrict(body, &r); err != nil {
		return Rule{}, err
	}
	r.ID = ""
	return r, r.Validate()
}

// Validate checks r; the error is ErrInvalid naming the first bad field.
func (r *Rule) Validate() error {
	r.Name = strings.TrimSpace(r.Name)
	switch {
	case r.Name == "":
		return invalid("name", "required")
	case len(r.Name) > maxNameLen:
		return invalid("name", "at most %d characters", maxNameLen)
	case r.Metric == "":
		return invalid("metric", "required: %q or a numeric field such as cpuUsagePercent", NoData)
	}
	if r.IsNoData() {
		switch {
		case r.Op != "":
			return invalid("op", "not allowed for a nodata rule")
		case r.Value != nil:
			return invalid("value", "not allowed for a nodata rule")
		case r.Clear != nil:
			return invalid("clear", "not allowed for a nodata rule")
		}
	} else {
		if _, ok := FieldOf(r.Metric, r.ForInstances()); !ok {
			kind := "ServerMetric"
			if r.ForInstances() {
				kind = "InstanceMetric"
			}
			return invalid("metric", "%q is not %q or a numeric %s field (%s)", r.Metric, NoData, kind, strings.Join(FieldNames(r.ForInstances()), ", "))
		}
		switch r.Op {
		case OpGT, OpGE, OpLT, OpLE:
		case "":
			return invalid("op", "required: one of > >= < <=")
		default:
			return invalid("op", "%q: must be one of > >= < <=", r.Op)
		}
		if r.Value == nil {
			return invalid("value", "required for a threshold rule")
		}
		if !finite(*r.Value) {
			return invalid("value", "must be a finite number")
		}
		if r.Clear != nil {
			c, v := *r.Clear, *r.Value
			switch {
			case !finite(c):
				return invalid("clear", "must be a finite number")
			case (r.Op == OpGT || r.Op == OpGE) && c > v:
				return invalid("clear", "must be at most value (%g) for op %s", v, r.Op)
			case (r.Op == OpLT || r.Op == OpLE) && c < v:
				return invalid("clear", "must be at least value (%g) for op %s", v, r.Op)
			}
		}
	}
	switch {
	case r.For < 0 || r.For.D() > MaxFor:
		return invalid("for", durationMsg+", at most %s", metric.FormatDuration(MaxFor))
	case r.Repeat != 0 && (r.Repeat.D() < MinRepeat || r.Repeat.D() > MaxFor):
		return invalid("repeat", durationMsg+" between %s and %s (or absent)", metric.FormatDuration(MinRepeat), metric.FormatDuration(MaxFor))
	case r.Group != nil && (*r.Group < 0 || r.Group.D() > MaxGroupWindow):
		return invalid("group", durationMsg+", at most %s", metric.FormatDuration(MaxGroupWindow))
	}
	if err := checkSelectors("servers", r.Servers, true); err != nil {
		return err
	}
	if err := checkSelectors("instances", r.Instances, false); err != nil {
		return err
	}
	if len(r.Channels) > maxSelectors {
		return invalid("channels", "at most %d", maxSelectors)
	}
	for i, c := range r.Channels {
		if !ValidChannelName(c) {
			return invalid(fmt.Sprintf("channels[%d]", i), "%q is not a channel name (1-64 of a-z, 0-9, '-', '_')", c)
		}
	}
	if r.Channels == nil {
		r.Channels = []string{}
	}
	return nil
}

func checkSelectors(field string, sels []string, required bool) error {
	if required && len(sels) == 0 {
		return invalid(field, `required: server ids or globs such as ["web-*"] or ["*"]`)
	}
	if len(sels) > maxSelectors {
		return invalid(field, "at most %d selectors", maxSelectors)
	}
	for i, s := range sels {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case strings.HasPrefix(s, "tag:"):
			return invalid(f, "%q: tag selectors are not supported yet; use server ids or globs", s)
		case s == "" || len(s) > 256:
			return invalid(f, "must be 1-256 characters")
		}
		if _, err := path.Match(s, ""); err != nil {
			return invalid(f, "%q is not a valid glob", s)
		}
		if field == "servers" && !isGlob(s) && !metric.ValidServerID(s) {
			return invalid(f, "%q is not a server id or glob", s)
		}
	}
	return nil
}

const durationMsg = `must be a duration of whole seconds such as "30s", "2m" or "1h"`

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func invalid(field, format string, args ...any) error {
	return metric.Errorf(metric.ErrInvalid, "%s: %s", field, fmt.Sprintf(format, args...))
}

// decodeStrict decodes exactly one JSON object with no unknown fields into
// v, naming the field in its ErrInvalid.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			f := te.Field
			if f == "" {
				f = "body"
			}
			return invalid(f, "wrong JSON type %s", te.Value)
		case errors.As(err, &se):
			return invalid("body", "malformed JSON at byte %d", se.Offset)
		case errors.Is(err, io.EOF):
			return invalid("body", "empty")
		}
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return invalid(strings.Trim(f, `"`), "unknown field")
		}
		// Errors of our own UnmarshalJSON methods ("for: must be …") come
		// without the field; encoding/json wraps them with its path only
		// in newer versions, so say what we know.
		return invalid("body", "%s", strings.TrimPrefix(msg, "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("body", "unexpected data after the JSON object")
	}
	return nil
}
