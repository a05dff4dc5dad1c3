-- Shared by settle, expire and restore (after common.lua): where a hold ends and where a
-- category's first deadline is kept. Left out of reserve.lua, which needs neither.

-- Records the category's earliest live deadline in the shard's `due` and its stock hash, or
-- drops it from both.
local function refresh_due(member)
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', KEYS[5], first[2], member)
    redis.call('HSET', KEYS[1], 'due', first[2])
  else
    redis.call('ZREM', KEYS[5], member)
    redis.call('HDEL', KEYS[1], 'due')
  end
end

-- Moves a live hold to `status`, gives its tickets back unless sold, and appends the change
-- to the outbox, in one atomic step. Returns the reservation's new JSON. The caller marks
-- the category touched.
local function finish(id, reservation, status, now, version)
  local qty = reservation.qty
  reservation.status = status
  reservation.updated_at = now
  local json = cjson.encode(reservation)
  redis.call('HSET', KEYS[4], id, json)
  redis.call('ZREM', KEYS[2], id)
  redis.call('HINCRBY', KEYS[1], 'held', -qty)
  if status == 'confirmed' then
    redis.call('HINCRBY', KEYS[1], 'sold', qty)
  else
    redis.call('HINCRBY', KEYS[1], 'available', qty)
    -- The per-user count exists only in categories with a limit; a miss nets to nothing.
    if redis.call('HINCRBY', KEYS[3], reservation.user_id, -qty) <= 0 then
      redis.call('HDEL', KEYS[3], reservation.user_id)
    end
  end
  outbox(id, json, version)
  redis.call('ZADD', KEYS[8], now, id)
  return json
end
