-- Expires the category's holds whose deadline has passed, by Redis's clock.
-- KEYS: 1-9 as in common.lua. ARGV: 1 category member, 2 limit, 3 event version
-- Returns how many holds expired, or -1 when the category's stock is missing (nothing is
-- touched then: reconcile rebuilds it).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local now, _, second = clock()
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now,
  'LIMIT', 0, tonumber(ARGV[2]))
local expired = 0
for _, id in ipairs(due) do
  local json = redis.call('HGET', KEYS[4], id)
  local reservation = json and cjson.decode(json)
  if reservation and reservation.status == 'held' then
    finish(id, reservation, 'expired', now, ARGV[3])
    expired = expired + 1
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
if expired > 0 then
  mark_touched(ARGV[1], now, second, redis.call('HGET', KEYS[1], 'touched_second'))
end
refresh_due(ARGV[1])
return expired
