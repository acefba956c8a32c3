package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vitals-dev/vitals/shared/metric"
)

// window returns the tier serving p and the score range of its buckets that
// start in (now-window, now]: at most window/resolution members.
func (s *Store) window(p metric.Period, now time.Time) (Tier, *redis.ZRangeBy, error) {
	t, err := s.tierFor(p)
	if err != nil {
		return t, nil, err
	}
	end := now.Unix()
	start := end - int64(p.Window/time.Second)
	return t, &redis.ZRangeBy{Min: "(" + itoa(start), Max: itoa(end)}, nil
}

// ServerMetrics implements metric.Store.
func (s *Store) ServerMetrics(ctx context.Context, serverID string, p metric.Period, now time.Time) ([]metric.ServerMetric, error) {
	t, rng, err := s.window(p, now)
	if err != nil {
		return nil, err
	}
	if !metric.ValidServerID(serverID) {
		return nil, notFound("server")
	}
	tag := s.serverTag(serverID)
	pipe := s.rdb.Pipeline()
	members := pipe.ZRangeByScore(ctx, tierKey(tag, t), rng)
	exists := pipe.Exists(ctx, latestKey(tag))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap(fmt.Errorf("server metrics: %w", err))
	}
	ms := members.Val()
	if len(ms) == 0 && exists.Val() == 0 {
		return nil, notFound("server")
	}
	out := make([]metric.ServerMetric, 0, len(ms))
	var m member
	for _, raw := range ms {
		if !decodeMember(raw, serverSpec, &m) {
			s.logger.Error("skipping undecodable point", "server", serverID, "resolution", t.Resolution)
			continue
		}
		out = append(out, m.serverMetric(serverID, t.Resolution, t == s.tiers[0]))
	}
	return out, nil
}

// Snapshot implements metric.Store.
func (s *Store) Snapshot(ctx context.Context, serverID string) (metric.Snapshot, error) {
	var snap metric.Snapshot
	if !metric.ValidServerID(serverID) {
		return snap, notFound("server")
	}
	raw, err := s.rdb.HGet(ctx, latestKey(s.serverTag(serverID)), "d").Bytes()
	if errors.Is(err, redis.Nil) {
		return snap, notFound("server")
	}
	if err != nil {
		return snap, s.wrap(fmt.Errorf("snapshot: %w", err))
	}
	if err := json.Unmarshal(raw, &snap); err != nil {
		return snap, fmt.Errorf("snapshot of %s: %w", serverID, err)
	}
	return snap, nil
}

// LatestServer implements metric.Store: the newest sample as a raw point of
// the finest tier.
func (s *Store) LatestServer(ctx context.Context, serverID string) (metric.ServerMetric, error) {
	snap, err := s.Snapshot(ctx, serverID)
	if err != nil {
		return metric.ServerMetric{}, err
	}
	return metric.RawServerMetric(serverID, &snap.Sample, s.tiers[0].Resolution), nil
}

// Instance implements metric.Store. An entry not seen within the longest
// retention is not found, whether or not ingest has pruned it yet.
func (s *Store) Instance(ctx context.Context, instanceID string) (metric.InstanceInfo, error) {
	pipe := s.rdb.Pipeline()
	ref := pipe.HGet(ctx, s.instancesKey(), instanceID)
	seen := pipe.ZScore(ctx, s.instancesSeenKey(), instanceID)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return metric.InstanceInfo{}, s.wrap(fmt.Errorf("instance: %w", err))
	}
	if at, err := seen.Result(); err == nil && int64(at) < s.liveSince(s.now()) {
		return metric.InstanceInfo{}, notFound("instance")
	}
	raw, err := ref.Bytes()
	return s.instanceInfo(instanceID, raw, err)
}

func (s *Store) instanceInfo(id string, raw []byte, err error) (metric.InstanceInfo, error) {
	if errors.Is(err, redis.Nil) {
		return metric.InstanceInfo{}, notFound("instance")
	}
	if err != nil {
		return metric.InstanceInfo{}, s.wrap(fmt.Errorf("instance: %w", err))
	}
	var ref instanceRef
	if err := json.Unmarshal(raw, &ref); err != nil {
		return metric.InstanceInfo{}, fmt.Errorf("instance index entry %s: %w", id, err)
	}
	return metric.InstanceInfo{ID: id, Name: ref.Name, ServerID: ref.ServerID}, nil
}

// InstanceMetrics implements metric.Store.
func (s *Store) InstanceMetrics(ctx context.Context, instanceID string, p metric.Period, now time.Time) ([]metric.InstanceMetric, error) {
	t, rng, err := s.window(p, now)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(instanceID, "{}") || instanceID == "" {
		return nil, notFound("instance")
	}
	pipe := s.rdb.Pipeline()
	ref := pipe.HGet(ctx, s.instancesKey(), instanceID)
	members := pipe.ZRangeByScore(ctx, tierKey(s.instanceTag(instanceID), t), rng)
	live := pipe.Exists(ctx, latestKey(s.instanceTag(instanceID)))
	_, err = pipe.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.wrap(fmt.Errorf("instance metrics: %w", err))
	}
	raw, err := ref.Bytes()
	info, err := s.instanceInfo(instanceID, raw, err)
	if err != nil {
		return nil, err
	}
	// An index entry can outlive its series (the index is pruned in
	// batches); no latest snapshot means the series expired: 404 as on
	// /latest, not an empty 200.
	if live.Val() == 0 {
		return nil, notFound("instance")
	}
	ms := members.Val()
	out := make([]metric.InstanceMetric, 0, len(ms))
	var m member
	for _, raw := range ms {
		if !decodeMember(raw, instanceSpec, &m) {
			s.logger.Error("skipping undecodable point", "instance", instanceID, "resolution", t.Resolution)
			continue
		}
		out = append(out, m.instanceMetric(info, t.Resolution, t == s.tiers[0]))
	}
	return out, nil
}

// LatestInstance implements metric.Store.
func (s *Store) LatestInstance(ctx context.Context, instanceID string) (metric.InstanceMetric, error) {
	var m metric.InstanceMetric
	if strings.ContainsAny(instanceID, "{}") || instanceID == "" {
		return m, notFound("instance")
	}
	raw, err := s.rdb.HGet(ctx, latestKey(s.instanceTag(instanceID)), "d").Bytes()
	if errors.Is(err, redis.Nil) {
		return m, notFound("instance")
	}
	if err != nil {
		return m, s.wrap(fmt.Errorf("latest instance: %w", err))
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("latest of instance %s: %w", instanceID, err)
	}
	return m, nil
}

// Servers implements metric.Store: the servers and instances seen within
// the longest retention. It only reads: ingest prunes the index, so a
// process configured with shorter tiers (a streamer without VITALS_TIERS)
// hides old entries from its own answer but never deletes them.
func (s *Store) Servers(ctx context.Context) ([]metric.ServerInfo, error) {
	cutoff := itoa(s.liveSince(s.now()))
	pipe := s.rdb.Pipeline()
	servers := pipe.ZRevRangeByScoreWithScores(ctx, s.serversKey(), &redis.ZRangeBy{Min: cutoff, Max: "+inf"})
	live := pipe.ZRangeByScore(ctx, s.instancesSeenKey(), &redis.ZRangeBy{Min: cutoff, Max: "+inf"})
	instances := pipe.HGetAll(ctx, s.instancesKey())
	intervals := pipe.HGetAll(ctx, s.intervalsKey())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap(fmt.Errorf("servers: %w", err))
	}
	iv := intervals.Val()
	isLive := make(map[string]bool, len(live.Val()))
	for _, id := range live.Val() {
		isLive[id] = true
	}
	byServer := map[string][]metric.InstanceInfo{}
	for id, raw := range instances.Val() {
		if !isLive[id] {
			continue
		}
		var ref instanceRef
		if json.Unmarshal([]byte(raw), &ref) != nil {
			continue
		}
		byServer[ref.ServerID] = append(byServer[ref.ServerID], metric.InstanceInfo{ID: id, Name: ref.Name, ServerID: ref.ServerID})
	}
	out := make([]metric.ServerInfo, 0, len(servers.Val()))
	for _, z := range servers.Val() {
		id, _ := z.Member.(string)
		ins := byServer[id]
		if ins == nil {
			ins = []metric.InstanceInfo{}
		}
		slices.SortFunc(ins, func(a, b metric.InstanceInfo) int { return strings.Compare(a.Name, b.Name) })
		interval := int64(metric.DefaultIntervalSeconds)
		if sec, err := strconv.ParseInt(iv[id], 10, 64); err == nil && sec > 0 {
			interval = sec
		}
		out = append(out, metric.ServerInfo{ID: id, LastSeenAt: time.UnixMilli(int64(z.Score)).UTC(), Interval: interval, Instances: ins})
	}
	return out, nil
}

func notFound(what string) error { return metric.Errorf(metric.ErrNotFound, "%s not found", what) }
