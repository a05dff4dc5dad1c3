-- Holds tickets, atomically with its outbox event.
-- KEYS: 1-9 as in common.lua, 10 this request's idempotency key, 11 this user's rate bucket
-- ARGV: 1 category member, 2 reservation id, 3 user, 4 qty, 5 hold time (ms),
--       6 the reservation's JSON up to its times (they are Redis's), 7 event version,
--       8 idempotency key TTL in seconds (0: no key), 9 reservations per minute (0: no limit),
--       10 burst
-- Returns {'held', created (ms), deadline (ms)} | {'replay', json} | {'unknown_category'} | {'stock_missing'}
--       | {'rate_limited', seconds} | {'sold_out'} | {'limit_exceeded', max}
-- Checks in the memory store's order: category, rate, idempotency key, per-user limit, stock.
-- A refusal writes nothing but the rate bucket.
local member, qty = ARGV[1], tonumber(ARGV[4])
local stock = redis.call('HMGET', KEYS[1], 'available', 'max_per_user')
if not stock[1] then
  -- A category the shard knows but whose stock is gone: fail closed until reconcile.
  if redis.call('ZSCORE', KEYS[8], member) then
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
local now_ms = now_ms()
local per_minute = tonumber(ARGV[9])
if per_minute > 0 then
  -- A token bucket: `burst` tokens, refilled at per_minute. Fractions are kept as strings,
  -- since Redis would truncate a Lua number to an integer.
  local burst = tonumber(ARGV[10])
  local bucket = redis.call('HMGET', KEYS[11], 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or burst
  local at = tonumber(bucket[2]) or now_ms
  tokens = math.min(burst, tokens + math.max(0, now_ms - at) * per_minute / 60000)
  local refill_ms = math.ceil(burst * 60000 / per_minute)
  if tokens < 1 then
    redis.call('HSET', KEYS[11], 'tokens', tostring(tokens), 'at', now_ms)
    redis.call('PEXPIRE', KEYS[11], refill_ms)
    return {'rate_limited', tostring(math.max(1, math.ceil((1 - tokens) * 60 / per_minute)))}
  end
  redis.call('HSET', KEYS[11], 'tokens', tostring(tokens - 1), 'at', now_ms)
  redis.call('PEXPIRE', KEYS[11], refill_ms)
end
local with_key = ARGV[8] ~= '0'
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
local deadline = now_ms + tonumber(ARGV[5])
-- Times as milliseconds: the adapter reads them back as times.
local json = ARGV[6] .. '"created_at":' .. now_ms .. ',"expires_at":' .. deadline
  .. ',"updated_at":' .. now_ms .. '}'
redis.call('HINCRBY', KEYS[1], 'available', -qty)
redis.call('HINCRBY', KEYS[1], 'held', qty)
if max > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[3], qty)
end
redis.call('HSET', KEYS[4], id, json)
redis.call('ZADD', KEYS[2], deadline, id)
redis.call('ZADD', KEYS[5], 'LT', deadline, member)
if with_key then
  redis.call('SET', KEYS[10], id, 'EX', ARGV[8])
  redis.call('HSET', KEYS[9], id, KEYS[10])
end
outbox(id, json, ARGV[7])
redis.call('ZADD', KEYS[8], now_ms, member)
return {'held', tostring(now_ms), tostring(deadline)}
