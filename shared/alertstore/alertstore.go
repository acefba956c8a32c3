// Package alertstore is the Redis implementation of alert.Store: rules,
// channels and silences as hashes of JSON, the state of every non-ok
// series in one hash changed only by a compare-and-set Lua script, and the
// delivery queue (grouped messages in a sorted set by due time, claimed
// with a lease).
//
// Every key shares the hash tag {alerts}, so the scripts touch one Redis
// Cluster slot. Alert data is small (rules, channels and the non-ok
// series), so one slot is plenty; the per-host time series stay sharded.
package alertstore

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/metric"
)

// MaxDeliveries is how many delivery attempts the log keeps.
const MaxDeliveries = 1000

var (
	//go:embed transition.lua
	transitionLua    string
	transitionScript = redis.NewScript(transitionLua)
	//go:embed claim.lua
	claimLua    string
	claimScript = redis.NewScript(claimLua)
)

// Store is the Redis alert store. Safe for concurrent use; it holds no
// state but the client and the key prefix.
type Store struct {
	rdb redis.UniversalClient
	p   string // prefix + "{alerts}:"
	// wrap classifies connectivity errors (redisstore.Store.Wrap).
	wrap func(error) error
}

var _ alert.Store = (*Store)(nil)

// New returns a store over rdb with keys under prefix (the metric store's
// prefix, e.g. "vitals:"). wrap turns connectivity failures into
// metric.ErrUnavailable; nil leaves errors as they are.
func New(rdb redis.UniversalClient, prefix string, wrap func(error) error) *Store {
	if wrap == nil {
		wrap = func(err error) error { return err }
	}
	return &Store{rdb: rdb, p: prefix + "{alerts}:", wrap: wrap}
}

func (s *Store) k(name string) string { return s.p + name }

func (s *Store) fail(what string, err error) error {
	if err == nil {
		return nil
	}
	return s.wrap(fmt.Errorf("%s: %w", what, err))
}

func notFound(what, id string) error {
	return metric.Errorf(metric.ErrNotFound, "%s %q not found", what, id)
}

// ---- rules ----

// CreateRule implements alert.Store.
func (s *Store) CreateRule(ctx context.Context, r alert.Rule) (alert.Rule, error) {
	r.ID = alert.NewID()
	b, err := json.Marshal(r)
	if err != nil {
		return r, fmt.Errorf("encode rule: %w", err)
	}
	return r, s.fail("create rule", s.rdb.HSet(ctx, s.k("rules"), r.ID, b).Err())
}

// Rule implements alert.Store.
func (s *Store) Rule(ctx context.Context, id string) (alert.Rule, error) {
	var r alert.Rule
	raw, err := s.rdb.HGet(ctx, s.k("rules"), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return r, notFound("rule", id)
	}
	if err != nil {
		return r, s.fail("rule", err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("decode rule %s: %w", id, err)
	}
	return r, nil
}

// Rules implements alert.Store.
func (s *Store) Rules(ctx context.Context) ([]alert.Rule, error) {
	all, err := s.rdb.HGetAll(ctx, s.k("rules")).Result()
	if err != nil {
		return nil, s.fail("rules", err)
	}
	return decodeRules(all)
}

func decodeRules(all map[string]string) ([]alert.Rule, error) {
	out := make([]alert.Rule, 0, len(all))
	for id, raw := range all {
		var r alert.Rule
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("decode rule %s: %w", id, err)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b alert.Rule) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// PutRule implements alert.Store. HSETXX does not exist; a Lua-free
// check-then-set could resurrect a rule deleted in between, so the
// replacement runs as a WATCH transaction.
func (s *Store) PutRule(ctx context.Context, r alert.Rule) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode rule: %w", err)
	}
	key := s.k("rules")
	err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		ok, err := tx.HExists(ctx, key, r.ID).Result()
		if err != nil {
			return err
		}
		if !ok {
			return notFound("rule", r.ID)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, r.ID, b)
			return nil
		})
		return err
	}, key)
	var me *metric.Error
	if errors.As(err, &me) {
		return err
	}
	return s.fail("put rule", err)
}

// DeleteRule implements alert.Store.
func (s *Store) DeleteRule(ctx context.Context, id string) error {
	return s.del(ctx, "rules", "rule", id)
}

func (s *Store) del(ctx context.Context, hash, what, id string) error {
	n, err := s.rdb.HDel(ctx, s.k(hash), id).Result()
	if err != nil {
		return s.fail("delete "+what, err)
	}
	if n == 0 {
		return notFound(what, id)
	}
	return nil
}

// ---- channels ----

// CreateChannel implements alert.Store; a taken name is ErrInvalid.
func (s *Store) CreateChannel(ctx context.Context, c alert.Channel) error {
	b, err := json.Marshal(c) //nolint:gosec // G117: the channel secret is stored so deliveries can be signed; it is never returned or logged after creation
	if err != nil {
		return fmt.Errorf("encode channel: %w", err)
	}
	ok, err := s.rdb.HSetNX(ctx, s.k("channels"), c.Name, b).Result()
	if err != nil {
		return s.fail("create channel", err)
	}
	if !ok {
		return alert.Exists("channel", c.Name)
	}
	return nil
}

// Channel implements alert.Store.
func (s *Store) Channel(ctx context.Context, name string) (alert.Channel, error) {
	var c alert.Channel
	raw, err := s.rdb.HGet(ctx, s.k("channels"), name).Bytes()
	if errors.Is(err, redis.Nil) {
		return c, notFound("channel", name)
	}
	if err != nil {
		return c, s.fail("channel", err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("decode channel %s: %w", name, err)
	}
	return c, nil
}

// Channels implements alert.Store.
func (s *Store) Channels(ctx context.Context) ([]alert.Channel, error) {
	all, err := s.rdb.HGetAll(ctx, s.k("channels")).Result()
	if err != nil {
		return nil, s.fail("channels", err)
	}
	out := make([]alert.Channel, 0, len(all))
	for name, raw := range all {
		var c alert.Channel
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return nil, fmt.Errorf("decode channel %s: %w", name, err)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b alert.Channel) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteChannel implements alert.Store.
func (s *Store) DeleteChannel(ctx context.Context, name string) error {
	return s.del(ctx, "channels", "channel", name)
}

// ---- silences ----

// CreateSilence implements alert.Store.
func (s *Store) CreateSilence(ctx context.Context, sl alert.Silence) (alert.Silence, error) {
	sl.ID = alert.NewID()
	b, err := json.Marshal(sl)
	if err != nil {
		return sl, fmt.Errorf("encode silence: %w", err)
	}
	return sl, s.fail("create silence", s.rdb.HSet(ctx, s.k("silences"), sl.ID, b).Err())
}

// Silences implements alert.Store. Ended silences are removed on the way
// (a bounded cleanup: the hash only holds what users created).
func (s *Store) Silences(ctx context.Context, now time.Time) ([]alert.Silence, error) {
	all, err := s.rdb.HGetAll(ctx, s.k("silences")).Result()
	if err != nil {
		return nil, s.fail("silences", err)
	}
	return s.activeSilences(ctx, all, now), nil
}

func (s *Store) activeSilences(ctx context.Context, all map[string]string, now time.Time) []alert.Silence {
	out := []alert.Silence{}
	var ended []string
	for id, raw := range all {
		var sl alert.Silence
		if json.Unmarshal([]byte(raw), &sl) != nil || !now.Before(sl.Until) {
			ended = append(ended, id)
			continue
		}
		out = append(out, sl)
	}
	if len(ended) > 0 {
		// Best effort: a failure only leaves them for the next read.
		_ = s.rdb.HDel(ctx, s.k("silences"), ended...).Err()
	}
	slices.SortFunc(out, func(a, b alert.Silence) int { return a.Until.Compare(b.Until) })
	return out
}

// DeleteSilence implements alert.Store.
func (s *Store) DeleteSilence(ctx context.Context, id string) error {
	return s.del(ctx, "silences", "silence", id)
}

// ---- state ----

// decodeState reads a state hash value, "<version>|<json>".
func decodeState(raw string) (alert.Alert, error) {
	var a alert.Alert
	v, js, ok := strings.Cut(raw, "|")
	if !ok {
		return a, errors.New("no version")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return a, fmt.Errorf("version: %w", err)
	}
	if err := json.Unmarshal([]byte(js), &a); err != nil {
		return a, err
	}
	a.Version = n
	return a, nil
}

// Load implements alert.Store: one MULTI, so the states and the version
// counter are of one instant.
func (s *Store) Load(ctx context.Context, now time.Time) (alert.Pass, error) {
	var pass alert.Pass
	var rules, silences, states *redis.MapStringStringCmd
	var seq *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		rules = p.HGetAll(ctx, s.k("rules"))
		silences = p.HGetAll(ctx, s.k("silences"))
		states = p.HGetAll(ctx, s.k("state"))
		seq = p.Get(ctx, s.k("seq"))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return pass, s.fail("load alerts", err)
	}
	if pass.Rules, err = decodeRules(rules.Val()); err != nil {
		return pass, err
	}
	pass.Silences = s.activeSilences(ctx, silences.Val(), now)
	pass.States = make(map[string]alert.Alert, len(states.Val()))
	for k, raw := range states.Val() {
		a, err := decodeState(raw)
		if err != nil {
			return pass, fmt.Errorf("decode alert state %s: %w", k, err)
		}
		pass.States[k] = a
	}
	if v := seq.Val(); v != "" {
		if pass.Seq, err = strconv.ParseInt(v, 10, 64); err != nil {
			return pass, fmt.Errorf("alert seq: %w", err)
		}
	}
	return pass, nil
}

// groupMeta is what a queued message keeps besides its alerts.
type groupMeta struct {
	Channel string     `json:"channel"`
	Rule    alert.Rule `json:"rule"`
	Status  string     `json:"status"`
}

// Transition implements alert.Store with the transition script.
func (s *Store) Transition(ctx context.Context, t alert.Transition) (bool, error) {
	newState := ""
	if t.To != nil {
		b, err := json.Marshal(t.To)
		if err != nil {
			return false, fmt.Errorf("encode state: %w", err)
		}
		newState = string(b)
	}
	resolved, score := "", int64(0)
	if t.Resolved != nil {
		b, err := json.Marshal(t.Resolved)
		if err != nil {
			return false, fmt.Errorf("encode resolved: %w", err)
		}
		resolved = string(b)
		if t.Resolved.EndsAt != nil {
			score = t.Resolved.EndsAt.UnixMilli()
		}
	}
	cutoff := time.UnixMilli(score).Add(-alert.ResolvedKept).UnixMilli()
	args := []any{t.Key, t.Seq, newState, resolved, score, cutoff, s.k("g:"), len(t.Notices)}
	for _, n := range t.Notices {
		a, err := json.Marshal(n.Alert)
		if err != nil {
			return false, fmt.Errorf("encode notice: %w", err)
		}
		meta, err := json.Marshal(groupMeta{Channel: n.Channel, Rule: n.Rule, Status: n.Status})
		if err != nil {
			return false, fmt.Errorf("encode notice: %w", err)
		}
		field := n.Channel + "|" + n.Rule.ID + "|" + n.Status
		due := n.At.Add(n.Rule.GroupWindow()).UnixMilli()
		args = append(args, field, alert.NewID(), due, a, meta)
	}
	ev, err := eventPrefix(t)
	if err != nil {
		return false, err
	}
	args = append(args, ev)
	keys := []string{s.k("state"), s.k("ver"), s.k("seq"), s.k("resolved"), s.k("open"), s.k("due"), s.EventsChannel()}
	v, err := transitionScript.Run(ctx, s.rdb, keys, args...).Int64()
	if err != nil {
		return false, s.fail("alert transition", err)
	}
	return v > 0, nil
}

// EventsChannel is the pub/sub channel the transition script publishes
// every applied transition on (<prefix>{alerts}:events), as the JSON of
// the series' new state (see alert.Event).
func (s *Store) EventsChannel() string { return s.k("events") }

// eventPrefix is the JSON of t's live event up to its version, which only
// the script knows: `{…,"version":`. A series back to ok without a
// resolve (a pending that cleared, a deleted rule) is an event of state
// "ok" with the ids its key names.
func eventPrefix(t alert.Transition) (string, error) {
	var a alert.Alert
	switch {
	case t.To != nil:
		a = *t.To
	case t.Resolved != nil:
		a = *t.Resolved
	default:
		a = alert.OKEvent(t.Key)
	}
	a.Version, a.Silenced, a.NotifiedAt = 0, false, time.Time{}
	b, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("encode event: %w", err)
	}
	const tail = `"version":0}`
	if !strings.HasSuffix(string(b), tail) {
		return "", errors.New("encode event: version is not the last field")
	}
	return strings.TrimSuffix(string(b), "0}"), nil
}

// Claim implements alert.Store with the claim script.
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]alert.Message, error) {
	res, err := claimScript.Run(ctx, s.rdb, []string{s.k("due"), s.k("open")},
		now.UnixMilli(), now.Add(lease).UnixMilli(), max, s.k("g:")).Slice()
	if err != nil {
		return nil, s.fail("claim messages", err)
	}
	out := make([]alert.Message, 0, len(res))
	for _, r := range res {
		row, ok := r.([]any)
		if !ok || len(row) != 4 {
			return nil, errors.New("claim: unexpected script reply")
		}
		id, _ := row[0].(string)
		metaRaw, _ := row[1].(string)
		att, _ := row[2].(int64)
		var meta groupMeta
		if err := json.Unmarshal([]byte(metaRaw), &meta); err != nil {
			return nil, fmt.Errorf("decode message %s: %w", id, err)
		}
		m := alert.Message{ID: id, Channel: meta.Channel, Rule: meta.Rule, Status: meta.Status, Attempt: int(att)}
		items, _ := row[3].([]any)
		for _, it := range items {
			raw, _ := it.(string)
			var a alert.Alert
			if err := json.Unmarshal([]byte(raw), &a); err != nil {
				return nil, fmt.Errorf("decode message %s: %w", id, err)
			}
			m.Alerts = append(m.Alerts, a)
		}
		out = append(out, m)
	}
	return out, nil
}

// Finish implements alert.Store.
func (s *Store) Finish(ctx context.Context, m alert.Message, d alert.Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	g := s.k("g:") + m.ID
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, s.k("due"), m.ID)
		p.Del(ctx, g, g+":a")
		p.LPush(ctx, s.k("deliveries"), b)
		p.LTrim(ctx, s.k("deliveries"), 0, MaxDeliveries-1)
		return nil
	})
	return s.fail("finish message", err)
}

// Retry implements alert.Store. ZADD XX: a message another claimer
// finished meanwhile stays finished.
func (s *Store) Retry(ctx context.Context, m alert.Message, d alert.Delivery, at time.Time) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAddXX(ctx, s.k("due"), redis.Z{Score: float64(at.UnixMilli()), Member: m.ID})
		p.LPush(ctx, s.k("deliveries"), b)
		p.LTrim(ctx, s.k("deliveries"), 0, MaxDeliveries-1)
		return nil
	})
	return s.fail("retry message", err)
}

// NextDue implements alert.Store.
func (s *Store) NextDue(ctx context.Context) (time.Time, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.k("due"), 0, 0).Result()
	if err != nil {
		return time.Time{}, s.fail("next due", err)
	}
	if len(zs) == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(int64(zs[0].Score)), nil
}

// RecordDelivery implements alert.Store.
func (s *Store) RecordDelivery(ctx context.Context, d alert.Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.LPush(ctx, s.k("deliveries"), b)
		p.LTrim(ctx, s.k("deliveries"), 0, MaxDeliveries-1)
		return nil
	})
	return s.fail("record delivery", err)
}

// Deliveries implements alert.Store.
func (s *Store) Deliveries(ctx context.Context, limit int) ([]alert.Delivery, error) {
	if limit <= 0 || limit > MaxDeliveries {
		limit = MaxDeliveries
	}
	raws, err := s.rdb.LRange(ctx, s.k("deliveries"), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, s.fail("deliveries", err)
	}
	out := make([]alert.Delivery, 0, len(raws))
	for _, raw := range raws {
		var d alert.Delivery
		if json.Unmarshal([]byte(raw), &d) == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// Alerts implements alert.Store.
func (s *Store) Alerts(ctx context.Context, now time.Time) ([]alert.Alert, error) {
	pipe := s.rdb.Pipeline()
	states := pipe.HGetAll(ctx, s.k("state"))
	resolved := pipe.ZRevRangeByScore(ctx, s.k("resolved"), &redis.ZRangeBy{
		Min: strconv.FormatInt(now.Add(-alert.ResolvedKept).UnixMilli(), 10), Max: "+inf"})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("alerts", err)
	}
	out := make([]alert.Alert, 0, len(states.Val())+len(resolved.Val()))
	for k, raw := range states.Val() {
		a, err := decodeState(raw)
		if err != nil {
			return nil, fmt.Errorf("decode alert state %s: %w", k, err)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b alert.Alert) int { return b.Since.Compare(a.Since) })
	for _, raw := range resolved.Val() {
		var a alert.Alert
		if json.Unmarshal([]byte(raw), &a) == nil {
			out = append(out, a)
		}
	}
	return out, nil
}
