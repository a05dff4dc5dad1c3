-- Rebuilds a category from its stored reservations (reconcile), when its stock is missing or,
-- with `replace`, broken. Whatever is left of its live state is dropped first.
-- KEYS: 1 stock, 2 deadlines, 3 users, 4 holds, 5 due, 6 touched (as in common.lua's 1-5, 7)
-- ARGV: 1 category member, 2 total, 3 max per user (0: none), 4 replace (1) or not (0),
--       then per stored live or sold reservation six values: id, JSON, status, qty, user,
--       deadline (ms)
-- Returns 1 if rebuilt, 0 if the stock was there and not to be replaced.
if redis.call('EXISTS', KEYS[1]) == 1 and ARGV[4] ~= '1' then
  return 0
end
local total, max = tonumber(ARGV[2]), tonumber(ARGV[3])
local held, sold = 0, 0
for i = 5, #ARGV, 6 do
  local status, qty = ARGV[i + 2], tonumber(ARGV[i + 3])
  if status == 'held' then held = held + qty end
  if status == 'confirmed' then sold = sold + qty end
end
if held + sold > total then
  return redis.error_reply('stored reservations exceed the category stock')
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
for i = 5, #ARGV, 6 do
  local id, status, qty, user = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
  if status == 'held' then
    redis.call('HSET', KEYS[4], id, ARGV[i + 1])
    redis.call('ZADD', KEYS[2], ARGV[i + 5], id)
  end
  if max > 0 then
    redis.call('HINCRBY', KEYS[3], user, qty)
  end
end
redis.call('HSET', KEYS[1], 'total', total, 'available', total - held - sold, 'held', held,
  'sold', sold, 'max_per_user', max)
refresh_due(ARGV[1])
local now = clock()
redis.call('ZADD', KEYS[6], now, ARGV[1])
return 1
