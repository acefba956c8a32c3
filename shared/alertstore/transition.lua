-- Compare-and-set of one alert series, with everything the transition
-- causes, atomically. Every key shares the {alerts} hash tag (one slot).
-- KEYS: 1 state hash, 2 version hash, 3 seq counter, 4 resolved zset,
--       5 open-group hash, 6 due zset, 7 events channel (PUBLISH)
-- ARGV: 1 series key, 2 read seq, 3 new state JSON ('' = back to ok),
--       4 resolved JSON ('' = none), 5 resolved score (ms), 6 resolved
--       cutoff (ms), 7 group key prefix, 8 number of notices, then per
--       notice: open field, new group id, due (ms), alert JSON, meta JSON;
--       last, the event: the new state's JSON up to '"version":', which
--       the script completes with the version it assigns.
-- The version hash keeps each series' last version even after it returns
-- to ok, so a decision made on an older read can never apply (no ABA).
local key = ARGV[1]
local last = tonumber(redis.call('HGET', KEYS[2], key) or '0')
if last > tonumber(ARGV[2]) then return 0 end
local v = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[2], key, v)
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], key)
else
  -- "<version>|<json>": readers learn the version the CAS compares
  -- without Lua re-encoding the JSON.
  redis.call('HSET', KEYS[1], key, v .. '|' .. ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[6])
  -- Bound the history whatever the churn: the newest 10,000 entries.
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -10001)
end
local n = tonumber(ARGV[8])
local gp = ARGV[7]
for i = 0, n - 1 do
  local b = 9 + i * 5
  local field, newgid, due, a, meta = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local gid = redis.call('HGET', KEYS[5], field)
  if (not gid) or redis.call('EXISTS', gp .. gid) == 0 then
    gid = newgid
    redis.call('HSET', KEYS[5], field, gid)
    redis.call('HSET', gp .. gid, 'meta', meta, 'open', field, 'attempt', 0)
    redis.call('ZADD', KEYS[6], due, gid)
  end
  redis.call('RPUSH', gp .. gid .. ':a', a)
end
-- Published here, so a live viewer hears of a transition exactly when it
-- applies (and never of one that lost the compare-and-set).
local ev = ARGV[9 + n * 5]
if ev and ev ~= '' and KEYS[7] then
  redis.call('PUBLISH', KEYS[7], ev .. v .. '}')
end
return v
