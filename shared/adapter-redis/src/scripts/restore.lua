-- Rebuilds a category lost by Redis from its stored reservations (ticketd reconcile).
-- Does nothing if the category's stock exists, so it never overwrites live state.
-- KEYS: 1 stock, 2 holds, 3 deadlines, 4 users
-- ARGV: 1 total, 2 max per user (0: none), then per reservation six values:
--       id, JSON, status, qty, user, deadline (ms)
-- Returns 1 if restored, 0 if the category was there.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local total, max = tonumber(ARGV[1]), tonumber(ARGV[2])
local held, sold = 0, 0
for i = 3, #ARGV, 6 do
  local status, qty = ARGV[i + 2], tonumber(ARGV[i + 3])
  if status == 'held' then held = held + qty end
  if status == 'confirmed' then sold = sold + qty end
end
if held + sold > total then
  return redis.error_reply('stored reservations exceed the category stock')
end
for i = 3, #ARGV, 6 do
  local id, status, qty, user = ARGV[i], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
  redis.call('HSET', KEYS[2], id, ARGV[i + 1])
  if status == 'held' then
    redis.call('ZADD', KEYS[3], ARGV[i + 5], id)
  end
  if max > 0 and (status == 'held' or status == 'confirmed') then
    redis.call('HINCRBY', KEYS[4], user, qty)
  end
end
redis.call('HSET', KEYS[1], 'total', total, 'available', total - held - sold, 'held', held,
  'sold', sold, 'max_per_user', max)
return 1
