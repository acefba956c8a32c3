package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Host keys live in one hash, server id → "<createdAt unix ns> <key>". The
// key text never reaches a log line or an error message.

// HostKey implements metric.HostKeys.
func (s *Store) HostKey(ctx context.Context, serverID string) ([]byte, error) {
	v, err := s.rdb.HGet(ctx, s.hostsKey(), serverID).Result()
	if errors.Is(err, redis.Nil) {
		return nil, metric.Errorf(metric.ErrNotFound, "unknown host")
	}
	if err != nil {
		return nil, s.wrap(fmt.Errorf("host key: %w", err))
	}
	_, key, ok := strings.Cut(v, " ")
	if !ok || key == "" {
		return nil, fmt.Errorf("host key entry of %s is malformed", serverID)
	}
	return []byte(key), nil
}

// AddHost implements metric.HostKeys: a new random key, replacing (rotating)
// any previous one.
func (s *Store) AddHost(ctx context.Context, serverID string) ([]byte, error) {
	if !metric.ValidServerID(serverID) {
		return nil, metric.Errorf(metric.ErrInvalid, "invalid server id")
	}
	key := auth.NewHostKey()
	v := strconv.FormatInt(s.now().UnixNano(), 10) + " " + string(key)
	if err := s.rdb.HSet(ctx, s.hostsKey(), serverID, v).Err(); err != nil {
		return nil, s.wrap(fmt.Errorf("add host: %w", err))
	}
	return key, nil
}

// RevokeHost implements metric.HostKeys.
func (s *Store) RevokeHost(ctx context.Context, serverID string) error {
	n, err := s.rdb.HDel(ctx, s.hostsKey(), serverID).Result()
	if err != nil {
		return s.wrap(fmt.Errorf("revoke host: %w", err))
	}
	if n == 0 {
		return metric.Errorf(metric.ErrNotFound, "unknown host")
	}
	return nil
}

// Hosts implements metric.HostKeys.
func (s *Store) Hosts(ctx context.Context) ([]metric.Host, error) {
	all, err := s.rdb.HGetAll(ctx, s.hostsKey()).Result()
	if err != nil {
		return nil, s.wrap(fmt.Errorf("hosts: %w", err))
	}
	out := make([]metric.Host, 0, len(all))
	for id, v := range all {
		ts, _, _ := strings.Cut(v, " ")
		ns, _ := strconv.ParseInt(ts, 10, 64)
		out = append(out, metric.Host{ServerID: id, CreatedAt: time.Unix(0, ns).UTC()})
	}
	slices.SortFunc(out, func(a, b metric.Host) int { return strings.Compare(a.ServerID, b.ServerID) })
	return out, nil
}
