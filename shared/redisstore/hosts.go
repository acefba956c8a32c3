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

// Host keys live in one hash, server id → "<enrolled unix ns> <key created
// unix ns> <key>" (entries written before rotations kept the enrolment time
// read "<created unix ns> <key>"). The key text never reaches a log line or
// an error message.

// HostKey implements metric.HostKeys.
func (s *Store) HostKey(ctx context.Context, serverID string) ([]byte, error) {
	v, err := s.rdb.HGet(ctx, s.hostsKey(), serverID).Result()
	if errors.Is(err, redis.Nil) {
		return nil, metric.Errorf(metric.ErrNotFound, "unknown host")
	}
	if err != nil {
		return nil, s.wrap(fmt.Errorf("host key: %w", err))
	}
	_, key, ok := parseHostEntry(serverID, v)
	if !ok {
		return nil, fmt.Errorf("host key entry of %s is malformed", serverID)
	}
	return key, nil
}

// parseHostEntry splits a hosts hash value into its times and key.
func parseHostEntry(serverID, v string) (metric.Host, []byte, bool) {
	f := strings.Fields(v)
	if len(f) < 2 || len(f) > 3 {
		return metric.Host{ServerID: serverID}, nil, false
	}
	at := func(s string) time.Time {
		ns, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}
		}
		return time.Unix(0, ns).UTC()
	}
	h := metric.Host{ServerID: serverID, EnrolledAt: at(f[0]), KeyCreatedAt: at(f[len(f)-2])}
	return h, []byte(f[len(f)-1]), true
}

// AddHost implements metric.HostKeys: a new random key, replacing (rotating)
// any previous one. A rotation keeps the host's enrolment time.
func (s *Store) AddHost(ctx context.Context, serverID string) ([]byte, error) {
	if !metric.ValidServerID(serverID) {
		return nil, metric.Errorf(metric.ErrInvalid, "invalid server id")
	}
	old, err := s.rdb.HGet(ctx, s.hostsKey(), serverID).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.wrap(fmt.Errorf("add host: %w", err))
	}
	now := strconv.FormatInt(s.now().UnixNano(), 10)
	enrolled := now
	if h, _, ok := parseHostEntry(serverID, old); ok && !h.EnrolledAt.IsZero() {
		enrolled = strconv.FormatInt(h.EnrolledAt.UnixNano(), 10)
	}
	key := auth.NewHostKey()
	if err := s.rdb.HSet(ctx, s.hostsKey(), serverID, enrolled+" "+now+" "+string(key)).Err(); err != nil {
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
		h, _, _ := parseHostEntry(id, v)
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b metric.Host) int { return strings.Compare(a.ServerID, b.ServerID) })
	return out, nil
}
