package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
// KEYS: tier keys (T, finest first), latest key, seen bitmaps (one per day).
// ARGV: spec, T, now, channel, longest retention, snapshot ts, snapshot
// JSON, sample-age horizon, T × (resolution, retention), then per sample
// (oldest first):
// ts, seen index (0-based), live JSON, one value per spec field.
// Returns {accepted, duplicates}.
const ingestLua = `
local spec = ARGV[1]
local T = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local channel = ARGV[4]
local longest = tonumber(ARGV[5])
local snapTs = tonumber(ARGV[6])
local snap = ARGV[7]
local horizon = tonumber(ARGV[8])
local nf = string.len(spec)
local kinds = {}
for i = 1, nf do kinds[i] = string.sub(spec, i, i) end
local res, ret = {}, {}
local p = 9
for t = 1, T do
  res[t] = tonumber(ARGV[p]); ret[t] = tonumber(ARGV[p + 1]); p = p + 2
end
local latest = KEYS[T + 1]
local cur0 = tonumber(redis.call('HGET', latest, 't') or '-1')
local cur = cur0

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
    if ts > cur then
      redis.call('PUBLISH', channel, ARGV[q + 2])
      cur = ts
    end
    if ts == snapTs then snapNew = true end
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
if snapNew and snapTs > cur0 then
  redis.call('HSET', latest, 't', snapTs, 'd', snap)
end
if acc > 0 then redis.call('EXPIRE', latest, longest) end
return {acc, dup}
`

var ingestScript = redis.NewScript(ingestLua)

// seriesWrite is one series' script call.
type seriesWrite struct {
	keys []string
	args []any
}

// instanceReading is one instance reading with the time of its sample.
type instanceReading struct {
	at time.Time
	in *metric.InstanceSample
}

// instanceRef is what the index keeps per instance.
type instanceRef struct {
	ServerID string `json:"s"`
	Name     string `json:"n"`
}

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
	var gone []string
	if len(ids) > 0 {
		var over []string
		if gone, over, err = s.claimInstances(ctx, serverID, ids, byInstance, samples, now); err != nil {
			return res, err
		}
		if len(over) > 0 {
			res.InstancesOverLimit = len(over)
			ids = slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(over, id) })
			s.logger.Warn("server at its instance limit; new instances not stored", "server", serverID, "limit", s.maxInstances, "instances", len(over))
		}
	}
	index := make([]any, 0, 2*len(ids))
	seen := make([]redis.Z, 0, len(ids))
	for _, id := range ids {
		rs := byInstance[id]
		w, err := s.instanceWrite(serverID, id, rs, now, finest)
		if err != nil {
			return res, err
		}
		writes = append(writes, w)
		last := rs[len(rs)-1]
		ref, _ := json.Marshal(instanceRef{serverID, last.in.Name})
		index = append(index, id, string(ref))
		seen = append(seen, redis.Z{Score: float64(last.at.UnixMilli()), Member: id})
	}

	newest := batch[len(batch)-1].CollectedAt
	pipe := s.rdb.Pipeline()
	calls := make([]*redis.Cmd, len(writes))
	for i, w := range writes {
		calls[i] = ingestScript.EvalSha(ctx, pipe, w.keys, w.args...)
	}
	pipe.ZAddGT(ctx, s.serversKey(), redis.Z{Score: float64(newest.UnixMilli()), Member: serverID})
	// The index keeps a server for the longest retention (its history
	// lives that long), not for the shorter sample-age horizon.
	pipe.ZRemRangeByScore(ctx, s.serversKey(), "-inf", "("+itoa(s.liveSince(now)))
	pipe.Expire(ctx, s.serversKey(), s.longest)
	if len(gone) > 0 {
		members := make([]any, len(gone))
		for i, g := range gone {
			members[i] = g
		}
		pipe.HDel(ctx, s.instancesKey(), gone...)
		pipe.ZRem(ctx, s.instancesSeenKey(), members...)
	}
	if len(ids) > 0 {
		pipe.HSet(ctx, s.instancesKey(), index...)
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
	first := calls[0]
	counts, err := first.Int64Slice()
	if err != nil || len(counts) != 2 {
		return res, fmt.Errorf("ingest %s: unexpected script reply: %v", serverID, err) //nolint:errorlint // err may be nil (a reply of the wrong length); the text is for the log, no caller matches it
	}
	res.Accepted, res.Duplicates = int(counts[0]), int(counts[1])
	return res, nil
}

// pruneBatch bounds how many expired index entries one ingest removes, so
// a batch never pays for a large backlog; GET /api/servers prunes the rest.
const pruneBatch = 256

// claimInstances binds each instance id of a batch to the server reporting
// it, before anything is written. The first server to report an id owns
// it (HSETNX on the index, atomic across concurrent ingests); a batch from
// any other server naming that id is refused whole, so no host can move an
// instance, its history or its readers' scope under itself. The refusal
// names the field but not the owner, which is another host's business.
//
// A server may have at most maxInstances live instances: new ones past
// that are returned as over (their readings are not stored, the rest of
// the batch is), so a host whose instance names churn keeps its own
// series and known instances instead of losing every batch. Claims that
// are refused or over are taken back, leaving nothing behind. It also
// returns up to pruneBatch index entries whose series expired.
//
// All in one round trip: the claims, the owners, this server's live set
// (pruned of expired members first) and the expired index entries.
// Concurrent batches of one server that both bring new instances may
// overshoot the limit by one batch's worth; never more.
func (s *Store) claimInstances(ctx context.Context, serverID string, ids []string, byInstance map[string][]instanceReading, samples []metric.Sample, now time.Time) (gone, over []string, err error) {
	own := s.serverInstancesKey(serverID)
	cutoff := "(" + itoa(s.liveSince(now))
	pipe := s.rdb.Pipeline()
	claimed := make([]*redis.BoolCmd, len(ids))
	for i, id := range ids {
		rs := byInstance[id]
		ref, _ := json.Marshal(instanceRef{serverID, rs[len(rs)-1].in.Name})
		claimed[i] = pipe.HSetNX(ctx, s.instancesKey(), id, string(ref))
		// Seen at its reading unless seen already: a claim that is taken
		// back or whose series is never written still ages out of the
		// index like any other entry.
		pipe.ZAddNX(ctx, s.instancesSeenKey(), redis.Z{Score: float64(rs[len(rs)-1].at.UnixMilli()), Member: id})
	}
	owners := pipe.HMGet(ctx, s.instancesKey(), ids...)
	expired := pipe.ZRangeByScore(ctx, s.instancesSeenKey(), &redis.ZRangeBy{Min: "-inf", Max: cutoff, Count: pruneBatch})
	pipe.ZRemRangeByScore(ctx, own, "-inf", cutoff)
	live := pipe.ZMScore(ctx, own, ids...)
	count := pipe.ZCard(ctx, own)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, s.wrap(fmt.Errorf("claim instances of %s: %w", serverID, err))
	}
	for i, v := range owners.Val() {
		raw, _ := v.(string)
		var ref instanceRef
		if json.Unmarshal([]byte(raw), &ref) == nil && ref.ServerID == serverID {
			continue
		}
		s.unclaim(ctx, serverID, ids, claimed, ids)
		return nil, nil, metric.Errorf(metric.ErrInvalid, "%s: instance %s is already reported by another server; give this one its own instanceId, or none to derive it from the server id and name", instanceField(samples, ids[i]), ids[i])
	}
	// ZMSCORE answers 0 for a non-member; members' scores are timestamps.
	room := s.maxInstances - int(count.Val())
	for i, score := range live.Val() {
		if score != 0 {
			continue
		}
		if room > 0 {
			room--
			continue
		}
		over = append(over, ids[i])
	}
	if len(over) > 0 {
		s.unclaim(ctx, serverID, ids, claimed, over)
	}
	for _, id := range expired.Val() {
		if _, inBatch := byInstance[id]; !inBatch {
			gone = append(gone, id)
		}
	}
	return gone, over, nil
}

// unclaim takes back the index entries this batch created (HSETNX
// succeeded) for the ids in drop. If that fails the entries age out with
// the index; what the batch does next does not depend on it.
func (s *Store) unclaim(ctx context.Context, serverID string, ids []string, claimed []*redis.BoolCmd, drop []string) {
	var fresh []string
	var members []any
	for i, c := range claimed {
		if c.Val() && slices.Contains(drop, ids[i]) {
			fresh = append(fresh, ids[i])
			members = append(members, ids[i])
		}
	}
	if len(fresh) == 0 {
		return
	}
	pipe := s.rdb.Pipeline()
	pipe.HDel(ctx, s.instancesKey(), fresh...)
	pipe.ZRem(ctx, s.instancesSeenKey(), members...)
	if _, err := pipe.Exec(ctx); err != nil {
		s.logger.Warn("could not take back instance claims; they expire with the index", "server", serverID, "instances", len(fresh), "err", err)
	}
}

// instanceField names the first place id appears in samples, as the
// validator names fields ("samples[2].instances[0].instanceId").
func instanceField(samples []metric.Sample, id string) string {
	for i := range samples {
		for j := range samples[i].Instances {
			if samples[i].Instances[j].InstanceID == id {
				return fmt.Sprintf("samples[%d].instances[%d].instanceId", i, j)
			}
		}
	}
	return "instances"
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
			calls[i] = ingestScript.Eval(ctx, pipe, writes[i].keys, writes[i].args...)
		}
	}
	_, err := pipe.Exec(ctx)
	return err
}

// scriptHead builds the keys and leading arguments shared by both series
// kinds; days maps each sample's day to its seen-bitmap index.
func (s *Store) scriptHead(tag, spec, channel string, now time.Time, snapAt time.Time, snap []byte, times []time.Time) (keys []string, args []any, dayIdx []int) {
	keys = make([]string, 0, len(s.tiers)+2)
	for _, t := range s.tiers {
		keys = append(keys, tierKey(tag, t))
	}
	keys = append(keys, latestKey(tag))
	days := map[int64]int{}
	dayIdx = make([]int, len(times))
	for i, at := range times {
		d := at.Unix() / 86400
		idx, ok := days[d]
		if !ok {
			idx = len(days)
			days[d] = idx
			keys = append(keys, seenKey(tag, d))
		}
		dayIdx[i] = idx
	}
	args = make([]any, 0, 8+2*len(s.tiers)+len(times)*(3+len(spec)))
	args = append(args, spec, len(s.tiers), now.Unix(), channel, int64(s.longest/time.Second), snapAt.Unix(), snap, int64(s.horizon/time.Second))
	for _, t := range s.tiers {
		args = append(args, int64(t.Resolution/time.Second), int64(t.Retention/time.Second))
	}
	return keys, args, dayIdx
}

func (s *Store) serverWrite(serverID string, batch []*metric.Sample, now time.Time, finest time.Duration) (seriesWrite, error) {
	newest := batch[len(batch)-1]
	snap, err := json.Marshal(metric.Snapshot{ServerID: serverID, Sample: *newest})
	if err != nil {
		return seriesWrite{}, fmt.Errorf("encode snapshot: %w", err)
	}
	times := make([]time.Time, len(batch))
	for i, smp := range batch {
		times[i] = smp.CollectedAt
	}
	keys, args, dayIdx := s.scriptHead(s.serverTag(serverID), serverSpec, s.ServerChannel(serverID), now, newest.CollectedAt, snap, times)
	for i, smp := range batch {
		live, err := json.Marshal(metric.RawServerMetric(serverID, smp, finest))
		if err != nil {
			return seriesWrite{}, fmt.Errorf("encode live metric: %w", err)
		}
		args = append(args, smp.CollectedAt.Unix(), dayIdx[i], live)
		for _, f := range serverFields(smp) {
			args = append(args, f)
		}
	}
	return seriesWrite{keys, args}, nil
}

func (s *Store) instanceWrite(serverID, id string, rs []instanceReading, now time.Time, finest time.Duration) (seriesWrite, error) {
	lives := make([][]byte, len(rs))
	times := make([]time.Time, len(rs))
	for i, r := range rs {
		in := *r.in
		in.InstanceID = id
		live, err := json.Marshal(metric.RawInstanceMetric(serverID, r.at, &in, finest))
		if err != nil {
			return seriesWrite{}, fmt.Errorf("encode live metric: %w", err)
		}
		lives[i], times[i] = live, r.at
	}
	last := len(rs) - 1
	keys, args, dayIdx := s.scriptHead(s.instanceTag(id), instanceSpec, s.InstanceChannel(id), now, rs[last].at, lives[last], times)
	for i, r := range rs {
		args = append(args, r.at.Unix(), dayIdx[i], lives[i])
		for _, f := range instanceFields(r.in) {
			args = append(args, f)
		}
	}
	return seriesWrite{keys, args}, nil
}
