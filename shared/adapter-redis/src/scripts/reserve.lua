-- Holds tickets, atomically with its outbox event.
-- KEYS: 1-7 as in common.lua. ARGV: 1 category member, 2 reservation id, 3 user, 4 qty,
--       5 hold time (ms), 6 the reservation's JSON up to its times (they are Redis's),
--       7 event version.
-- Then only what the request needs, since every key and argument costs Redis work a call:
--   with a rate limit: KEYS 8 this user's rate bucket; ARGV 8 reservations per minute, 9 burst
--   with an Idempotency-Key: KEYS 9 key-of, 10 the key; ARGV 10 its TTL in seconds (then
--   without a rate, KEYS 8 is any key of the slot and ARGV 8-9 are 0)
-- Returns {'held', created (ms)} | {'replay', json} | {'unknown_category'} | {'stock_missing'}
--       | {'rate_limited', seconds} | {'sold_out'} | {'limit_exceeded', max}
-- Checks in the memory store's order: category, rate, idempotency key, per-user limit, stock.
-- A refusal writes nothing but the rate bucket.
local member, qty = ARGV[1], tonumber(ARGV[4])
local stock = redis.call('HMGET', KEYS[1], 'available', 'max_per_user', 'due', 'touched_second')
if not stock[1] then
  -- A category the shard knows but whose stock is gone: fail closed until reconcile.
  if redis.call('ZSCORE', KEYS[7], member) then
    return {'stock_missing'}
  end
  return {'unknown_category'}
end
-- A call sent again with the same id (a client library resends after a dropped connection,
-- not knowing whether Redis ran it) finds its hold rather than taking stock twice.
local again = redis.call('HGET', KEYS[4], ARGV[2])
if again then
  return {'replay', again}
end
local now, created, second = clock()
local per_minute = tonumber(ARGV[8] or '0')
if per_minute > 0 then
  -- A token bucket: `burst` tokens, refilled at per_minute. Fractions are kept as strings,
  -- since Redis would truncate a Lua number to an integer.
  local burst = tonumber(ARGV[9])
  local bucket = redis.call('HMGET', KEYS[8], 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or burst
  local at = tonumber(bucket[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * per_minute / 60000)
  local refill_ms = math.ceil(burst * 60000 / per_minute)
  if tokens < 1 then
    redis.call('HSET', KEYS[8], 'tokens', tostring(tokens), 'at', created)
    redis.call('PEXPIRE', KEYS[8], refill_ms)
    return {'rate_limited', tostring(math.max(1, math.ceil((1 - tokens) * 60 / per_minute)))}
  end
  redis.call('HSET', KEYS[8], 'tokens', tostring(tokens - 1), 'at', created)
  redis.call('PEXPIRE', KEYS[8], refill_ms)
end
local with_key = ARGV[10] ~= nil
if with_key then
  local earlier = redis.call('GET', KEYS[10])
  local json = earlier and redis.call('HGET', KEYS[4], earlier)
  if json then
    return {'replay', json}
  end
end
local max = tonumber(stock[2])
if max > 0 then
  local owned = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
  if owned + qty > max then
    return {'limit_exceeded', stock[2]}
  end
end
if tonumber(stock[1]) < qty then
  return {'sold_out'}
end
local id = ARGV[2]
local ends = now + tonumber(ARGV[5])
-- Times as milliseconds: the adapter reads them back as times. Numbers go out as text made
-- once, by an integer format (see clock); qty as it came.
local deadline = string.format('%d', ends)
local json = ARGV[6] .. '"created_at":' .. created .. ',"expires_at":' .. deadline
  .. ',"updated_at":' .. created .. '}'
redis.call('HINCRBY', KEYS[1], 'available', '-' .. ARGV[4])
redis.call('HINCRBY', KEYS[1], 'held', ARGV[4])
if max > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[3], ARGV[4])
end
redis.call('HSET', KEYS[4], id, json)
redis.call('ZADD', KEYS[2], deadline, id)
-- The category's first deadline moves only if this one is earlier: rarely, since a new
-- hold usually ends last.
if not stock[3] or ends < tonumber(stock[3]) then
  redis.call('ZADD', KEYS[5], 'LT', deadline, member)
  redis.call('HSET', KEYS[1], 'due', deadline)
end
if with_key then
  redis.call('SET', KEYS[10], id, 'EX', ARGV[10])
  redis.call('HSET', KEYS[9], id, KEYS[10])
end
outbox(id, json, ARGV[7])
mark_touched(member, created, second, stock[4])
return {'held', created}
