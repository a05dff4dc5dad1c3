-- Expires the category's holds whose deadline is at or before now.
-- ARGV: 1 now (ms), 2 now (RFC 3339), 3 limit, 4 event version
-- Returns how many holds expired.
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local expired = 0
for _, id in ipairs(due) do
  local json = redis.call('HGET', KEYS[2], id)
  local reservation = json and cjson.decode(json)
  if reservation and reservation.status == 'held' then
    finish(id, reservation, 'expired', ARGV[2], ARGV[4])
    expired = expired + 1
  else
    redis.call('ZREM', KEYS[3], id)
  end
end
return expired
