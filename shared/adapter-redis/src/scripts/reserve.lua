-- Holds tickets, atomically with its outbox event.
-- KEYS: 1 stock, 2 holds, 3 deadlines, 4 users, 5 outbox, 6 this request's idempotency key,
--       7 this user's rate bucket
-- ARGV: 1 reservation id, 2 user, 3 qty, 4 deadline (ms), 5 reservation JSON,
--       6 idempotency key TTL in seconds (0: no key), 7 event version,
--       8 reservations per minute (0: no limit), 9 burst, 10 now (ms)
-- Returns {'held'} | {'replay', json} | {'unknown_category'} | {'rate_limited', seconds}
--       | {'sold_out'} | {'limit_exceeded', max}
-- Checks in the memory store's order: category, rate, idempotency key, per-user limit, stock.
local qty = tonumber(ARGV[3])
local stock = redis.call('HMGET', KEYS[1], 'available', 'max_per_user')
if not stock[1] then
  return {'unknown_category'}
end
local per_minute = tonumber(ARGV[8])
if per_minute > 0 then
  -- A token bucket: `burst` tokens, refilled at per_minute. Fractions are kept as strings,
  -- since Redis would truncate a Lua number to an integer.
  local burst, now = tonumber(ARGV[9]), tonumber(ARGV[10])
  local bucket = redis.call('HMGET', KEYS[7], 'tokens', 'at')
  local tokens = tonumber(bucket[1]) or burst
  local at = tonumber(bucket[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * per_minute / 60000)
  local refill_ms = math.ceil(burst * 60000 / per_minute)
  if tokens < 1 then
    redis.call('HSET', KEYS[7], 'tokens', tostring(tokens), 'at', now)
    redis.call('PEXPIRE', KEYS[7], refill_ms)
    return {'rate_limited', tostring(math.max(1, math.ceil((1 - tokens) * 60 / per_minute)))}
  end
  redis.call('HSET', KEYS[7], 'tokens', tostring(tokens - 1), 'at', now)
  redis.call('PEXPIRE', KEYS[7], refill_ms)
end
if ARGV[6] ~= '0' then
  local earlier = redis.call('GET', KEYS[6])
  local json = earlier and redis.call('HGET', KEYS[2], earlier)
  if json then
    return {'replay', json}
  end
end
local max = tonumber(stock[2])
if max > 0 then
  local owned = tonumber(redis.call('HGET', KEYS[4], ARGV[2]) or '0')
  if owned + qty > max then
    return {'limit_exceeded', stock[2]}
  end
end
if tonumber(stock[1]) < qty then
  return {'sold_out'}
end
redis.call('HINCRBY', KEYS[1], 'available', -qty)
redis.call('HINCRBY', KEYS[1], 'held', qty)
if max > 0 then
  redis.call('HINCRBY', KEYS[4], ARGV[2], qty)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
if ARGV[6] ~= '0' then
  redis.call('SET', KEYS[6], ARGV[1], 'EX', ARGV[6])
end
redis.call('XADD', KEYS[5], '*', 'key', ARGV[1],
  'event', '{"version":' .. ARGV[7] .. ',"reservation":' .. ARGV[5] .. '}')
return {'held'}
