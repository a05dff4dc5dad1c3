-- Shared by settle.lua and expire.lua: the one place a hold ends.
-- KEYS of both scripts: 1 stock, 2 holds, 3 deadlines, 4 users, 5 outbox.
-- Moves a live hold to `status`, gives its tickets back unless sold, and appends the change
-- to the outbox in the same atomic step. Returns the reservation's new JSON.
local function finish(id, reservation, status, now, version)
  local qty = reservation.qty
  reservation.status = status
  reservation.updated_at = now
  local json = cjson.encode(reservation)
  redis.call('HSET', KEYS[2], id, json)
  redis.call('ZREM', KEYS[3], id)
  redis.call('HINCRBY', KEYS[1], 'held', -qty)
  if status == 'confirmed' then
    redis.call('HINCRBY', KEYS[1], 'sold', qty)
  else
    redis.call('HINCRBY', KEYS[1], 'available', qty)
    -- The per-user count exists only in categories with a limit; a miss nets to nothing.
    if redis.call('HINCRBY', KEYS[4], reservation.user_id, -qty) <= 0 then
      redis.call('HDEL', KEYS[4], reservation.user_id)
    end
  end
  redis.call('XADD', KEYS[5], '*', 'key', id,
    'event', '{"version":' .. version .. ',"reservation":' .. json .. '}')
  return json
end
