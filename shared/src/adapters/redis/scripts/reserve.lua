-- Holds tickets, atomically with its outbox event.
-- KEYS: 1 stock, 2 holds, 3 deadlines, 4 users, 5 outbox, 6 this request's idempotency key
-- ARGV: 1 reservation id, 2 user, 3 qty, 4 deadline (ms), 5 reservation JSON,
--       6 idempotency key TTL in seconds (0: no key), 7 event version
-- Returns {'held'} | {'replay', json} | {'unknown_category'} | {'sold_out'} | {'limit_exceeded', max}
local qty = tonumber(ARGV[3])
if ARGV[6] ~= '0' then
  local earlier = redis.call('GET', KEYS[6])
  local json = earlier and redis.call('HGET', KEYS[2], earlier)
  if json then
    return {'replay', json}
  end
end
local stock = redis.call('HMGET', KEYS[1], 'available', 'max_per_user')
if not stock[1] then
  return {'unknown_category'}
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
