package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vitals-dev/vitals/shared/metric"
)

// ingestLua stores one series' samples of a batch, atomically:
// test-and-set of the per-day "seen" bitmap (idempotency per collectedAt
// second), the running rollup of every tier's bucket, retention trimming,
// expiry, the latest snapshot (only when newer) and a PUBLISH per new sample
// that becomes the latest. It touches only the keys it is given, all of
// one hash tag.
//
// An instance series also records its owner in the latest hash (field o,
// "d:<server>" when the id is derived from that server's id and the
// instance name, "x:<server>" when an operator bound it), so the owner
// check and the write are one atomic step in the series' own slot: the
// index, checked before, may have changed since.
//
// The latest rule, the same the streamer applies: a sample becomes the
// latest (replaces the snapshot, and is published) when it is newer than
// the current latest, or when the current latest is dated after the
// caller's clock now (the host's clock stepped back: without this a
// sample from a clock that ran ahead would freeze the latest until real
// time caught up with it). Samples go oldest first, so once one becomes
// the latest every newer one of the batch follows it; a duplicate does
// too in that case (a re-sent batch alone changes nothing).
//
// KEYS: tier keys (T, finest first), latest key, seen bitmaps (one per
// day; on a take-over every day of the sample-age horizon).
// ARGV: spec, T, now, channel, longest retention, snapshot ts, snapshot
// JSON, sample-age horizon, owner server ("" for a server series), owner
// mode ("" none, d derived, w derived taking over from another server,
// x bound), T × (resolution, retention), then per sample (oldest first):
// ts, seen index (0-based), live JSON, one value per spec field.
// Returns {accepted, duplicates, refused (1: another server owns it)}.
const ingestLua = `
local spec = ARGV[1]
local T = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local channel = ARGV[4]
local longest = tonumber(ARGV[5])
local snapTs = tonumber(ARGV[6])
local snap = ARGV[7]
local horizon = tonumber(ARGV[8])
local owner, mode = ARGV[9], ARGV[10]
local nf = string.len(spec)
local kinds = {}
for i = 1, nf do kinds[i] = string.sub(spec, i, i) end
local res, ret = {}, {}
local p = 11
for t = 1, T do
  res[t] = tonumber(ARGV[p]); ret[t] = tonumber(ARGV[p + 1]); p = p + 2
end
local latest = KEYS[T + 1]

if mode ~= '' then
  local o = redis.call('HGET', latest, 'o')
  local want = 'x:' .. owner
  if mode ~= 'x' then want = 'd:' .. owner end
  if o ~= want then
    local other = o and string.sub(o, 3) ~= owner
    if mode == 'x' then
      -- a derived owner keeps its id whatever is bound
      if other and string.sub(o, 1, 2) == 'd:' then return {0, 0, 1} end
    elseif other or (not o and mode == 'w') then
      -- the id is derived from this server: what another server wrote
      -- under it is not this server's data, and its seen bits would
      -- turn this server's samples into duplicates
      for k = 1, #KEYS do
        if k ~= T + 1 then redis.call('DEL', KEYS[k]) end
      end
      redis.call('DEL', latest)
    end
    redis.call('HSET', latest, 'o', want)
    redis.call('EXPIRE', latest, longest)
  end
end

local cur0 = tonumber(redis.call('HGET', latest, 't') or '-1')
local cur = cur0
local moved = false
-- becomes reports whether the sample at ts replaces the latest.
local function becomes(ts)
  return ts > cur or (cur > now and ts ~= cur)
end

-- Every Lua string made costs about half a microsecond (interning, GC), a
-- large share of the script's time, so the helpers below make one string
-- per value: digits go through a byte buffer, floats get one format call
-- chosen by their rounded value, and a bucket holding a single sample is
-- written from the argument strings the caller formatted the same way.
local isB, isL, hasMax = {}, {}, {}
for i = 1, nf do
  local k = kinds[i]
  isB[i] = (k == 'B' or k == 'b')
  isL[i] = (k == 'L')
  hasMax[i] = (k == 'A' or k == 'B')
end
local buf = {}
local function b36(v)
  v = math.floor(v + 0.5)
  if v <= 0 then return '0' end
  local pos = 14
  while v > 0 do
    local d = v % 36
    pos = pos - 1
    if d < 10 then buf[pos] = 48 + d else buf[pos] = 87 + d end
    v = (v - d) / 36
  end
  return string.char(unpack(buf, pos, 13))
end

-- round gives the stored integer of a value: bytes as is, floats in
-- thousandths; two values with the same round format the same.
local function round(i, v)
  if isB[i] then return math.floor(v + 0.5) end
  return math.floor(v * 1000 + 0.5)
end

local function fmt(i, r)
  if isB[i] then return b36(r) end
  if r % 1000 == 0 then return string.format('%d', r / 1000) end
  if r % 100 == 0 then return string.format('%.1f', r / 1000) end
  if r % 10 == 0 then return string.format('%.2f', r / 1000) end
  return string.format('%.3f', r / 1000)
end

local function num(i, s)
  if isB[i] then return tonumber(s, 36) or 0 end
  return tonumber(s) or 0
end

local function fresh()
  return {n = 0, last = -1, v = {}, x = {}}
end

local function decode(m)
  local parts = {}
  for f in string.gmatch(m .. '|', '([^|]*)|') do parts[#parts + 1] = f end
  local a = {n = tonumber(parts[2], 36), last = tonumber(parts[1], 36) + tonumber(parts[3], 36), old = m, v = {}, x = {}}
  local j = 4
  for i = 1, nf do
    if isL[i] then
      a.v[i] = parts[j]; j = j + 1
    elseif hasMax[i] then
      a.v[i] = num(i, parts[j])
      if parts[j + 1] == '' then a.x[i] = a.v[i] else a.x[i] = num(i, parts[j + 1]) end
      j = j + 2
    else
      a.v[i] = num(i, parts[j]); j = j + 1
    end
  end
  return a
end

-- A bucket's first sample is only remembered (src: its ARGV offset); it is
-- turned into numbers when a second one joins.
local function materialize(a)
  local o = a.src
  for i = 1, nf do
    local s = ARGV[o + i]
    if isL[i] then
      a.v[i] = s
    else
      a.v[i] = num(i, s)
      if hasMax[i] then a.x[i] = a.v[i] end
    end
  end
  a.src = nil
end

-- merge adds the sample at ARGV offset o, whose numbers (parsed once for
-- all tiers) are in nv.
local function merge(a, ts, o, nv)
  if a.n == 0 then
    a.n = 1; a.last = ts; a.src = o
    return
  end
  if a.src then materialize(a) end
  local n = a.n + 1
  a.n = n
  local newer = ts > a.last
  local v, x = a.v, a.x
  for i = 1, nf do
    if isL[i] then
      if newer then v[i] = ARGV[o + i] end
    else
      local y = nv[i]
      v[i] = v[i] + (y - v[i]) / n
      if hasMax[i] and y > x[i] then x[i] = y end
    end
  end
  if newer then a.last = ts end
end

local function encode(a)
  local out = {b36(a.b), b36(a.n), b36(a.last - a.b)}
  if a.src then
    -- one sample: the caller's strings are already in stored form, and a
    -- max equal to its value is omitted
    for i = 1, nf do
      out[#out + 1] = ARGV[a.src + i]
      if hasMax[i] then out[#out + 1] = '' end
    end
    return table.concat(out, '|')
  end
  for i = 1, nf do
    if isL[i] then
      out[#out + 1] = a.v[i]
    else
      local r = round(i, a.v[i])
      out[#out + 1] = fmt(i, r)
      if hasMax[i] then
        local rx = round(i, a.x[i])
        if rx == r then out[#out + 1] = '' else out[#out + 1] = fmt(i, rx) end
      end
    end
  end
  return table.concat(out, '|')
end

local acc, dup = 0, 0
local cache, order, expired, sized = {}, {}, {}, {}
local snapNew = false
local stride = 3 + nf
local q = p
while q + stride - 1 <= #ARGV do
  local ts = tonumber(ARGV[q])
  local sk = KEYS[T + 2 + tonumber(ARGV[q + 1])]
  if not sized[sk] then
    sized[sk] = true
    -- Size a new day's bitmap once, exactly: growing it bit by bit lets
    -- Redis over-allocate (greedy sds growth), up to twice the 10800 bytes.
    if redis.call('EXISTS', sk) == 0 then redis.call('SETBIT', sk, 86399, 0) end
  end
  if redis.call('SETBIT', sk, ts % 86400, 1) == 1 then
    dup = dup + 1
    if moved and becomes(ts) then
      redis.call('PUBLISH', channel, ARGV[q + 2])
      cur = ts
      snapNew = (ts == snapTs)
    end
  else
    acc = acc + 1
    if not expired[sk] then
      expired[sk] = true
      -- relative to the caller's clock, not Redis's: the bitmap must
      -- outlive every sample of its day by the sample-age horizon, past
      -- which the caller drops a re-sent sample as stale before it gets here
      redis.call('EXPIRE', sk, math.max(1, ts - ts % 86400 + 86400 + horizon - now))
    end
    local nv = {}
    for i = 1, nf do
      if not isL[i] then nv[i] = num(i, ARGV[q + 2 + i]) end
    end
    for t = 1, T do
      local b = ts - ts % res[t]
      if b + res[t] > now - ret[t] then
        local ck = t .. ':' .. b
        local a = cache[ck]
        if a == nil then
          local m = redis.call('ZRANGEBYSCORE', KEYS[t], b, b)
          if m[1] then a = decode(m[1]) else a = fresh() end
          a.t = t; a.b = b
          cache[ck] = a
          order[#order + 1] = a
        end
        merge(a, ts, q + 2, nv)
      end
    end
    if becomes(ts) then
      redis.call('PUBLISH', channel, ARGV[q + 2])
      cur = ts
      moved = true
      snapNew = (ts == snapTs)
    end
  end
  q = q + stride
end

local touched = {}
for _, a in ipairs(order) do
  local m = encode(a)
  if a.old ~= m then
    if a.old then redis.call('ZREMRANGEBYSCORE', KEYS[a.t], a.b, a.b) end
    redis.call('ZADD', KEYS[a.t], a.b, m)
  end
  touched[a.t] = true
end
for t = 1, T do
  if touched[t] then
    redis.call('ZREMRANGEBYSCORE', KEYS[t], '-inf', now - ret[t] - res[t])
    redis.call('EXPIRE', KEYS[t], ret[t] + res[t])
  end
end
-- snapNew: the batch's newest sample, whose snapshot the caller sent,
-- became the latest (the last one that did, so it is the latest now)
if snapNew then
  redis.call('HSET', latest, 't', snapTs, 'd', snap)
end
if acc > 0 then redis.call('EXPIRE', latest, longest) end
return {acc, dup, 0}
`

var ingestScript = redis.NewScript(ingestLua)

// indexLua writes instance index entries, refusing a bound ("x") entry over
// an entry another server holds by derivation: a bound write that raced
// the derived owner's take-over (the owner checks passed before it) must
// not move the index, which decides who may read the instance. One key,
// so it runs on a cluster too.
//
// KEYS: the index. ARGV: `"s":"<server>"` as the entries spell it, then
// per entry: id, entry JSON, kind (d or x).
const indexLua = `
local me = ARGV[1]
for i = 2, #ARGV, 3 do
  local id, ref, kind = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local ok = true
  if kind ~= 'd' then
    local cur = redis.call('HGET', KEYS[1], id)
    if cur and string.find(cur, '"k":"d"', 1, true) and not string.find(cur, me, 1, true) then ok = false end
  end
  if ok then redis.call('HSET', KEYS[1], id, ref) end
end
return 0
`

var indexScript = redis.NewScript(indexLua)

// seriesWrite is one script call.
type seriesWrite struct {
	script *redis.Script
	keys   []string
	args   []any
}

// instanceReading is one instance reading with the time of its sample.
type instanceReading struct {
	at time.Time
	in *metric.InstanceSample
}

// instanceRef is what the index (and a binding) keeps per instance.
type instanceRef struct {
	ServerID string `json:"s"`
	Name     string `json:"n"`
	// Kind is why the server may report the id: "d" derived from its id
	// and the instance name, "x" bound by an operator. Entries stored
	// before bindings existed (first report wins) have none.
	Kind string `json:"k,omitempty"`
}

// Owner modes of the ingest script for an instance series.
const (
	ownDerived  = "d" // derived from the reporting server's id and the name
	ownTakeOver = "w" // derived, and the index names another server: its data goes
	ownBound    = "x" // bound to the reporting server (or a claim from before bindings)
)

// Ingest implements metric.Store. One pipeline: a script call per series
// (server, then each instance) and the index updates. Every command is safe
// to repeat (the scripts are idempotent), so a retry after a lost reply
// stores nothing twice.
func (s *Store) Ingest(ctx context.Context, serverID string, samples []metric.Sample) (metric.IngestResult, error) {
	var res metric.IngestResult
	if !metric.ValidServerID(serverID) {
		return res, metric.Errorf(metric.ErrInvalid, "invalid server id")
	}
	now := s.now()
	// Older than the horizon, a sample's seen bitmap may be gone, so a
	// re-send would count it twice in the rollups: drop it instead.
	oldest := now.Add(-s.horizon)
	batch := make([]*metric.Sample, 0, len(samples))
	for i := range samples {
		if samples[i].CollectedAt.Before(oldest) {
			res.Stale++
			continue
		}
		batch = append(batch, &samples[i])
	}
	if len(batch) == 0 {
		return res, nil
	}
	// Oldest first, so live updates go out in time order.
	slices.SortStableFunc(batch, func(a, b *metric.Sample) int { return a.CollectedAt.Compare(b.CollectedAt) })
	finest := s.tiers[0].Resolution

	writes := []seriesWrite{}
	w, err := s.serverWrite(serverID, batch, now, finest)
	if err != nil {
		return res, err
	}
	writes = append(writes, w)

	var ids []string
	byInstance := map[string][]instanceReading{}
	for _, smp := range batch {
		for i := range smp.Instances {
			in := &smp.Instances[i]
			id := in.InstanceID
			if id == "" {
				id = metric.InstanceUUID(serverID, in.Name)
			}
			if _, ok := byInstance[id]; !ok {
				ids = append(ids, id)
			}
			byInstance[id] = append(byInstance[id], instanceReading{smp.CollectedAt, in})
		}
	}
	var cl claims
	if len(ids) > 0 {
		if cl, err = s.claimInstances(ctx, serverID, ids, byInstance, now); err != nil {
			return res, err
		}
		for _, r := range cl.refused {
			refuse(&res, r)
		}
		if len(cl.refused) > 0 {
			s.logger.Warn("instances refused: their ids are not this server's", "server", serverID, "instances", len(cl.refused), "first", cl.refused[0].id, "reason", cl.refused[0].reason)
		}
		if len(cl.over) > 0 {
			res.InstancesOverLimit = len(cl.over)
			s.logger.Warn("server at its instance limit; new instances not stored", "server", serverID, "limit", s.maxInstances, "instances", len(cl.over))
		}
		ids = slices.DeleteFunc(ids, func(id string) bool { _, ok := cl.modes[id]; return !ok })
	}
	index := make([]any, 1, 1+3*len(ids))
	index[0] = `"s":"` + serverID + `"` // server ids need no JSON escaping
	seen := make([]redis.Z, 0, len(ids))
	for _, id := range ids {
		rs := byInstance[id]
		mode := cl.modes[id]
		w, err := s.instanceWrite(serverID, id, mode, rs, now, finest)
		if err != nil {
			return res, err
		}
		writes = append(writes, w)
		last := rs[len(rs)-1]
		kind := ownBound
		if mode != ownBound {
			kind = ownDerived
		}
		ref, _ := json.Marshal(instanceRef{serverID, last.in.Name, kind})
		index = append(index, id, string(ref), kind)
		seen = append(seen, redis.Z{Score: float64(seenAt(last.at, now)), Member: id})
	}
	if len(ids) > 0 {
		writes = append(writes, seriesWrite{indexScript, []string{s.instancesKey()}, index})
	}

	newest := batch[len(batch)-1].CollectedAt
	// lastSeenAt is never in the future: a sample from a clock running
	// ahead would otherwise pin it there (ZADD GT) until real time passed.
	pipe := s.rdb.Pipeline()
	calls := make([]*redis.Cmd, len(writes))
	for i, w := range writes {
		calls[i] = w.script.EvalSha(ctx, pipe, w.keys, w.args...)
	}
	pipe.ZAddGT(ctx, s.serversKey(), redis.Z{Score: float64(seenAt(newest, now)), Member: serverID})
	// The index keeps a server for the longest retention (its history
	// lives that long), not for the shorter sample-age horizon.
	pipe.ZRemRangeByScore(ctx, s.serversKey(), "-inf", "("+itoa(s.liveSince(now)))
	pipe.Expire(ctx, s.serversKey(), s.longest)
	if len(cl.gone) > 0 {
		members := make([]any, len(cl.gone))
		for i, g := range cl.gone {
			members[i] = g
		}
		pipe.HDel(ctx, s.instancesKey(), cl.gone...)
		pipe.ZRem(ctx, s.instancesSeenKey(), members...)
	}
	for i := 0; i < len(cl.migrate); i += 2 {
		pipe.HSetNX(ctx, s.bindingsKey(), cl.migrate[i], cl.migrate[i+1])
	}
	if len(cl.void) > 0 {
		pipe.HDel(ctx, s.bindingsKey(), cl.void...)
	}
	if len(ids) > 0 {
		pipe.Expire(ctx, s.instancesKey(), s.longest)
		pipe.ZAddGT(ctx, s.instancesSeenKey(), seen...)
		pipe.Expire(ctx, s.instancesSeenKey(), s.longest)
		pipe.ZAddGT(ctx, s.serverInstancesKey(serverID), seen...)
		pipe.Expire(ctx, s.serverInstancesKey(serverID), s.longest)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		err = s.resendScripts(ctx, cmds, calls, writes)
	}
	if err != nil {
		return res, s.wrap(fmt.Errorf("ingest %s: %w", serverID, err))
	}
	counts, err := calls[0].Int64Slice()
	if err != nil || len(counts) < 2 {
		return res, fmt.Errorf("ingest %s: unexpected script reply: %v", serverID, err) //nolint:errorlint // err may be nil (a reply of the wrong length); the text is for the log, no caller matches it
	}
	res.Accepted, res.Duplicates = int(counts[0]), int(counts[1])
	// An instance's script refuses what another server took by derivation
	// since the owner checks above ran.
	for i, id := range ids {
		if c, _ := calls[1+i].Int64Slice(); len(c) == 3 && c[2] == 1 {
			refuse(&res, refusal{id, byInstance[id][0].in.Name, reasonDerivedElsewhere})
		}
	}
	return res, nil
}

// seenAt is the last-seen score (unix ms) of a sample collected at: its
// time, but not later than now.
func seenAt(at, now time.Time) int64 { return min(at.UnixMilli(), now.UnixMilli()) }

// Reasons an instance's readings are refused, for the reporter's log. They
// never name the server that owns the id: that is another host's business.
const (
	reasonDerivedElsewhere = "the id is derived from another server's id and this name, so it is that server's; leave instanceId out to derive this server's own"
	reasonBoundElsewhere   = "the id is bound to another server (vitalsctl instance list)"
	reasonUnbound          = "the id is neither derived from this server's id and the instance name nor bound to this server; leave instanceId out, or have an operator run 'vitalsctl instance bind <serverId> <instanceId> <name>'"
)

// claims is what claimInstances decided for a batch's instance ids.
type claims struct {
	// modes holds the ids whose readings are stored, with the owner mode
	// of their script call.
	modes   map[string]string
	refused []refusal
	over    []string
	// gone are index entries whose series expired (at most pruneBatch).
	gone []string
	// migrate are id, binding pairs: claims from before bindings, which
	// count as bindings and are stored as such (HSETNX).
	migrate []string
	// void are bindings to another server of ids derived from this one:
	// the derived owner always wins, so they are deleted.
	void []string
}

// refusal is an instance whose readings a batch does not store.
type refusal struct{ id, name, reason string }

// refuse counts r in res; the first refusal is named in RefusedReason.
func refuse(res *metric.IngestResult, r refusal) {
	res.InstancesRefused++
	if res.RefusedReason == "" {
		res.RefusedReason = fmt.Sprintf("instance %s (%q): %s", r.id, r.name, r.reason)
	}
}

// pruneBatch bounds how many expired index entries one ingest removes, so
// a batch never pays for a large backlog; GET /api/servers prunes the rest.
const pruneBatch = 256

// claimInstances decides which instance ids of a batch the reporting
// server may write, before anything is written. An id is the server's when
// it is derived from the server's id and the reading's name (metric.
// InstanceUUID; anyone can compute it, but only this server can report it:
// the server id comes from the verified signature), or when an operator
// bound it to the server (vitalsctl instance bind). A claim stored before
// bindings existed (the first server to report an id owned it) counts as a
// binding and is stored as one. Any other id is refused alone: its
// readings are not stored, the rest of the batch is, so what one host sends
// never costs another host its data or its batches. A derived owner takes
// its id back from whoever holds it, and what the other server wrote under
// it is deleted (by the script, atomically with the owner check).
//
// A server may have at most maxInstances live instances: new ones past
// that are returned as over (their readings are not stored, the rest of
// the batch is), so a host whose instance names churn keeps its own
// series and known instances instead of losing every batch.
//
// All in one round trip: index entries, bindings and series owners of the
// ids, this server's live set (pruned of expired members first) and the
// expired index entries. Concurrent batches of one server that both bring
// new instances may overshoot the limit by one batch's worth; never more.
func (s *Store) claimInstances(ctx context.Context, serverID string, ids []string, byInstance map[string][]instanceReading, now time.Time) (claims, error) {
	own := s.serverInstancesKey(serverID)
	cutoff := "(" + itoa(s.liveSince(now))
	pipe := s.rdb.Pipeline()
	entries := pipe.HMGet(ctx, s.instancesKey(), ids...)
	bound := pipe.HMGet(ctx, s.bindingsKey(), ids...)
	owners := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		owners[i] = pipe.HGet(ctx, latestKey(s.instanceTag(id)), "o")
	}
	expired := pipe.ZRangeByScore(ctx, s.instancesSeenKey(), &redis.ZRangeBy{Min: "-inf", Max: cutoff, Count: pruneBatch})
	pipe.ZRemRangeByScore(ctx, own, "-inf", cutoff)
	live := pipe.ZMScore(ctx, own, ids...)
	count := pipe.ZCard(ctx, own)
	cmds, _ := pipe.Exec(ctx)
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return claims{}, s.wrap(fmt.Errorf("claim instances of %s: %w", serverID, err))
		}
	}
	cl := claims{modes: make(map[string]string, len(ids))}
	ref := func(v any) (instanceRef, bool) {
		var r instanceRef
		raw, ok := v.(string)
		if !ok || json.Unmarshal([]byte(raw), &r) != nil {
			return r, false
		}
		return r, true
	}
	var legacy []int
	for i, id := range ids {
		rs := byInstance[id]
		entry, hasEntry := ref(entries.Val()[i])
		bind, hasBind := ref(bound.Val()[i])
		o := owners[i].Val() // "d:<server>", "x:<server>" or ""
		derivedElsewhere := strings.HasPrefix(o, "d:") && o[2:] != serverID
		refuse := func(reason string) {
			cl.refused = append(cl.refused, refusal{id, rs[len(rs)-1].in.Name, reason})
		}
		switch {
		case derivedFrom(serverID, id, rs):
			mode := ownDerived
			if hasEntry && entry.ServerID != serverID {
				mode = ownTakeOver
			}
			cl.modes[id] = mode
			if hasBind && bind.ServerID != serverID {
				cl.void = append(cl.void, id)
			}
		case derivedElsewhere:
			refuse(reasonDerivedElsewhere)
		case hasBind && bind.ServerID != serverID:
			refuse(reasonBoundElsewhere)
		case hasBind:
			cl.modes[id] = ownBound
		case hasEntry && entry.Kind == "" && entry.ServerID == serverID:
			cl.modes[id] = ownBound
			legacy = append(legacy, i)
		default:
			refuse(reasonUnbound)
		}
	}
	// ZMSCORE answers 0 for a non-member; members' scores are timestamps.
	room := s.maxInstances - int(count.Val())
	for i, score := range live.Val() {
		if _, ok := cl.modes[ids[i]]; !ok || score != 0 {
			continue
		}
		if room > 0 {
			room--
			continue
		}
		cl.over = append(cl.over, ids[i])
		delete(cl.modes, ids[i])
	}
	for _, i := range legacy {
		if _, ok := cl.modes[ids[i]]; ok {
			rs := byInstance[ids[i]]
			b, _ := json.Marshal(instanceRef{serverID, rs[len(rs)-1].in.Name, ownBound})
			cl.migrate = append(cl.migrate, ids[i], string(b))
		}
	}
	for _, id := range expired.Val() {
		if _, inBatch := byInstance[id]; !inBatch {
			cl.gone = append(cl.gone, id)
		}
	}
	return cl, nil
}

// derivedFrom reports whether id is metric.InstanceUUID of serverID and the
// name of one of the readings (almost always they all have one name).
func derivedFrom(serverID, id string, rs []instanceReading) bool {
	var tried []string
	for i := len(rs) - 1; i >= 0; i-- {
		name := rs[i].in.Name
		if slices.Contains(tried, name) {
			continue
		}
		if metric.InstanceUUID(serverID, name) == id {
			return true
		}
		tried = append(tried, name)
	}
	return false
}

// resendScripts handles a pipeline that failed only because a Redis node
// had no cached script (a restart flushes the cache): it sends the script
// text with EVAL for exactly the calls that missed it, since the others ran
// and a second run would report their samples as duplicates. Any other
// error is returned as is.
func (s *Store) resendScripts(ctx context.Context, cmds []redis.Cmder, calls []*redis.Cmd, writes []seriesWrite) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return err
		}
	}
	pipe := s.rdb.Pipeline()
	for i, c := range calls {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			calls[i] = writes[i].script.Eval(ctx, pipe, writes[i].keys, writes[i].args...)
		}
	}
	_, err := pipe.Exec(ctx)
	return err
}

// scriptHead builds the keys and leading arguments shared by both series
// kinds; days maps each sample's day to its seen-bitmap index. A take-over
// passes the seen bitmaps of every day a stored sample can be from, so
// the script can delete them all.
func (s *Store) scriptHead(tag, spec, channel, owner, mode string, now time.Time, snapAt time.Time, snap []byte, times []time.Time) (keys []string, args []any, dayIdx []int) {
	keys = make([]string, 0, len(s.tiers)+2)
	for _, t := range s.tiers {
		keys = append(keys, tierKey(tag, t))
	}
	keys = append(keys, latestKey(tag))
	days := map[int64]int{}
	day := func(d int64) int {
		idx, ok := days[d]
		if !ok {
			idx = len(days)
			days[d] = idx
			keys = append(keys, seenKey(tag, d))
		}
		return idx
	}
	if mode == ownTakeOver {
		// Samples are at most the horizon old and a few minutes ahead.
		for d := now.Add(-s.horizon).Unix() / 86400; d <= now.Unix()/86400+1; d++ {
			day(d)
		}
	}
	dayIdx = make([]int, len(times))
	for i, at := range times {
		dayIdx[i] = day(at.Unix() / 86400)
	}
	args = make([]any, 0, 10+2*len(s.tiers)+len(times)*(3+len(spec)))
	args = append(args, spec, len(s.tiers), now.Unix(), channel, int64(s.longest/time.Second), snapAt.Unix(), snap, int64(s.horizon/time.Second), owner, mode)
	for _, t := range s.tiers {
		args = append(args, int64(t.Resolution/time.Second), int64(t.Retention/time.Second))
	}
	return keys, args, dayIdx
}

func (s *Store) serverWrite(serverID string, batch []*metric.Sample, now time.Time, finest time.Duration) (seriesWrite, error) {
	// The snapshot and the live points carry the values as stored, so a
	// raw point reads the same on /latest, the stream and in history.
	newest := storedSample(batch[len(batch)-1])
	snap, err := json.Marshal(metric.Snapshot{ServerID: serverID, Sample: newest})
	if err != nil {
		return seriesWrite{}, fmt.Errorf("encode snapshot: %w", err)
	}
	times := make([]time.Time, len(batch))
	for i, smp := range batch {
		times[i] = smp.CollectedAt
	}
	keys, args, dayIdx := s.scriptHead(s.serverTag(serverID), serverSpec, s.ServerChannel(serverID), "", "", now, newest.CollectedAt, snap, times)
	for i, smp := range batch {
		stored := storedSample(smp)
		live, err := json.Marshal(metric.RawServerMetric(serverID, &stored, finest))
		if err != nil {
			return seriesWrite{}, fmt.Errorf("encode live metric: %w", err)
		}
		args = append(args, smp.CollectedAt.Unix(), dayIdx[i], live)
		for _, f := range serverFields(&stored) {
			args = append(args, f)
		}
	}
	return seriesWrite{ingestScript, keys, args}, nil
}

func (s *Store) instanceWrite(serverID, id, mode string, rs []instanceReading, now time.Time, finest time.Duration) (seriesWrite, error) {
	lives := make([][]byte, len(rs))
	times := make([]time.Time, len(rs))
	stored := make([]metric.InstanceSample, len(rs))
	for i, r := range rs {
		stored[i] = storedInstance(r.in)
		stored[i].InstanceID = id
		live, err := json.Marshal(metric.RawInstanceMetric(serverID, r.at, &stored[i], finest))
		if err != nil {
			return seriesWrite{}, fmt.Errorf("encode live metric: %w", err)
		}
		lives[i], times[i] = live, r.at
	}
	last := len(rs) - 1
	keys, args, dayIdx := s.scriptHead(s.instanceTag(id), instanceSpec, s.InstanceChannel(id), serverID, mode, now, rs[last].at, lives[last], times)
	for i, r := range rs {
		args = append(args, r.at.Unix(), dayIdx[i], lives[i])
		for _, f := range instanceFields(&stored[i]) {
			args = append(args, f)
		}
	}
	return seriesWrite{ingestScript, keys, args}, nil
}
