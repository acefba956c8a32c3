-- Claim due messages: each is hidden until the lease ends, closed to new
-- members (its open-group entry is removed) and its attempt counted.
-- KEYS: 1 due zset, 2 open-group hash
-- ARGV: 1 now (ms), 2 lease end (ms), 3 max, 4 group key prefix
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, gid in ipairs(ids) do
  local g = ARGV[4] .. gid
  local meta = redis.call('HGET', g, 'meta')
  if not meta then
    redis.call('ZREM', KEYS[1], gid)
  else
    redis.call('ZADD', KEYS[1], ARGV[2], gid)
    local field = redis.call('HGET', g, 'open')
    if field and redis.call('HGET', KEYS[2], field) == gid then
      redis.call('HDEL', KEYS[2], field)
    end
    local att = redis.call('HINCRBY', g, 'attempt', 1)
    table.insert(out, {gid, meta, att, redis.call('LRANGE', g .. ':a', 0, -1)})
  end
end
return out
