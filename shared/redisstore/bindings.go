package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Binding lets a server report an instance id that is not derived from its
// own id and the instance name (a configured id, e.g. one that follows a
// database from host to host). Only an operator makes one (vitalsctl
// instance bind): the first host to report an id no longer owns it.
type Binding struct {
	InstanceID string `json:"instanceId"`
	ServerID   string `json:"serverId"`
	// Name is the operator's note of what the id is; readings bring
	// their own names.
	Name string `json:"name,omitempty"`
}

// Bind binds instanceID (a UUID, any case) to serverID, replacing any
// binding to another server, and returns the server it was bound to
// before ("" if none). From the next batch on, only serverID's readings of
// the id are stored; history already stored under it stays, now readable
// as serverID's. An id derived from a server's id and an instance name
// stays that server's whatever is bound: when that server reports it, its
// binding is deleted.
func (s *Store) Bind(ctx context.Context, serverID, instanceID, name string) (previous string, err error) {
	if err := metric.CheckServerID(serverID); err != nil {
		return "", err
	}
	id, err := metric.ParseUUID(instanceID)
	if err != nil {
		return "", metric.Errorf(metric.ErrInvalid, "instance id %q: must be a UUID", instanceID)
	}
	if len(name) > 256 {
		return "", metric.Errorf(metric.ErrInvalid, "name: at most 256 bytes")
	}
	ref, _ := json.Marshal(instanceRef{serverID, name, ownBound})
	old, err := s.rdb.HGet(ctx, s.bindingsKey(), id).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", s.wrap(fmt.Errorf("bind instance: %w", err))
	}
	if err := s.rdb.HSet(ctx, s.bindingsKey(), id, ref).Err(); err != nil {
		return "", s.wrap(fmt.Errorf("bind instance: %w", err))
	}
	var prev instanceRef
	if old != "" && json.Unmarshal([]byte(old), &prev) == nil && prev.ServerID != serverID {
		return prev.ServerID, nil
	}
	return "", nil
}

// Unbind deletes the binding of instanceID: its server's readings of it
// are refused from the next batch on. Unknown: ErrNotFound.
func (s *Store) Unbind(ctx context.Context, instanceID string) error {
	id, err := metric.ParseUUID(instanceID)
	if err != nil {
		return metric.Errorf(metric.ErrInvalid, "instance id %q: must be a UUID", instanceID)
	}
	n, err := s.rdb.HDel(ctx, s.bindingsKey(), id).Result()
	if err != nil {
		return s.wrap(fmt.Errorf("unbind instance: %w", err))
	}
	if n == 0 {
		return metric.Errorf(metric.ErrNotFound, "instance %s is not bound", id)
	}
	return nil
}

// Bindings lists the bindings, by server then instance id. Claims from
// before bindings existed appear once their server reports them again.
func (s *Store) Bindings(ctx context.Context) ([]Binding, error) {
	all, err := s.rdb.HGetAll(ctx, s.bindingsKey()).Result()
	if err != nil {
		return nil, s.wrap(fmt.Errorf("bindings: %w", err))
	}
	out := make([]Binding, 0, len(all))
	for id, raw := range all {
		var ref instanceRef
		if json.Unmarshal([]byte(raw), &ref) != nil {
			continue
		}
		out = append(out, Binding{InstanceID: id, ServerID: ref.ServerID, Name: ref.Name})
	}
	slices.SortFunc(out, func(a, b Binding) int {
		if c := strings.Compare(a.ServerID, b.ServerID); c != 0 {
			return c
		}
		return strings.Compare(a.InstanceID, b.InstanceID)
	})
	return out, nil
}
