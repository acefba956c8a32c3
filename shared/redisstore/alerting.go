package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/metric"
)

// What the alert evaluator reads: only the newest state of each series
// (the server index's last-seen scores, announced intervals and latest
// snapshots), never history, so a pass costs O(servers).

// intervalsKey holds each server's announced reporting interval
// (seconds), beside the servers index that holds its last-seen time.
func (s *Store) intervalsKey() string { return s.prefix + "intervals" }

// Prefix is the key prefix, for stores that share the database
// (shared/alertstore).
func (s *Store) Prefix() string { return s.prefix }

// Wrap turns connectivity failures into metric.ErrUnavailable as the
// store's own methods do, for stores that share its client.
func (s *Store) Wrap(err error) error { return s.wrap(err) }

// RecordInterval stores the reporting interval serverID announced with
// its last batch.
func (s *Store) RecordInterval(ctx context.Context, serverID string, d time.Duration) error {
	pipe := s.rdb.Pipeline()
	pipe.HSet(ctx, s.intervalsKey(), serverID, int64(d/time.Second))
	pipe.Expire(ctx, s.intervalsKey(), s.longest)
	_, err := pipe.Exec(ctx)
	return s.wrap(err)
}

// Heartbeats lists every live server with its last sample time and
// announced interval: two commands, whatever the fleet size.
func (s *Store) Heartbeats(ctx context.Context) ([]alert.Heartbeat, error) {
	pipe := s.rdb.Pipeline()
	servers := pipe.ZRangeByScoreWithScores(ctx, s.serversKey(), &redis.ZRangeBy{Min: itoa(s.liveSince(s.now())), Max: "+inf"})
	intervals := pipe.HGetAll(ctx, s.intervalsKey())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap(fmt.Errorf("heartbeats: %w", err))
	}
	iv := intervals.Val()
	out := make([]alert.Heartbeat, 0, len(servers.Val()))
	for _, z := range servers.Val() {
		id, _ := z.Member.(string)
		hb := alert.Heartbeat{ServerID: id, LastSeen: time.UnixMilli(int64(z.Score)).UTC()}
		if sec, err := strconv.ParseInt(iv[id], 10, 64); err == nil && sec > 0 {
			hb.Interval = time.Duration(sec) * time.Second
		}
		out = append(out, hb)
	}
	return out, nil
}

// InstanceBeats lists every live instance with its server and newest
// reading time.
func (s *Store) InstanceBeats(ctx context.Context) ([]alert.InstanceBeat, error) {
	pipe := s.rdb.Pipeline()
	seen := pipe.ZRangeByScoreWithScores(ctx, s.instancesSeenKey(), &redis.ZRangeBy{Min: itoa(s.liveSince(s.now())), Max: "+inf"})
	refs := pipe.HGetAll(ctx, s.instancesKey())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.wrap(fmt.Errorf("instance beats: %w", err))
	}
	all := refs.Val()
	out := make([]alert.InstanceBeat, 0, len(seen.Val()))
	for _, z := range seen.Val() {
		id, _ := z.Member.(string)
		var ref instanceRef
		if json.Unmarshal([]byte(all[id]), &ref) != nil {
			continue
		}
		out = append(out, alert.InstanceBeat{ID: id, Name: ref.Name, ServerID: ref.ServerID, LastSeen: time.UnixMilli(int64(z.Score)).UTC()})
	}
	return out, nil
}

// LatestServers returns the newest raw point of each of ids that has one,
// in one pipeline.
func (s *Store) LatestServers(ctx context.Context, ids []string) (map[string]metric.ServerMetric, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, latestKey(s.serverTag(id)), "d")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.wrap(fmt.Errorf("latest servers: %w", err))
	}
	out := make(map[string]metric.ServerMetric, len(ids))
	var snap metric.Snapshot
	for i, c := range cmds {
		raw, err := c.Bytes()
		if err != nil {
			continue
		}
		snap = metric.Snapshot{}
		if json.Unmarshal(raw, &snap) != nil {
			s.logger.Error("skipping undecodable snapshot", "server", ids[i])
			continue
		}
		out[ids[i]] = metric.RawServerMetric(ids[i], &snap.Sample, s.tiers[0].Resolution)
	}
	return out, nil
}

// LatestInstances returns the newest point of each of ids that has one.
func (s *Store) LatestInstances(ctx context.Context, ids []string) (map[string]metric.InstanceMetric, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, latestKey(s.instanceTag(id)), "d")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.wrap(fmt.Errorf("latest instances: %w", err))
	}
	out := make(map[string]metric.InstanceMetric, len(ids))
	for i, c := range cmds {
		raw, err := c.Bytes()
		if err != nil {
			continue
		}
		var m metric.InstanceMetric
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		out[ids[i]] = m
	}
	return out, nil
}
