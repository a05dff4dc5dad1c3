-- The start of every script: time and the one place a hold ends.
-- Transition scripts take the keys of `CategoryKeys::transition` (keys.rs), in this order:
--   1 stock, 2 deadlines, 3 users (the category's);
--   4 holds, 5 due, 6 outbox, 7 finished, 8 touched, 9 key-of (its shard's).
-- Time is Redis's own (`now_ms`): every ticketd process agrees on deadlines, expiry and rates.

-- Milliseconds since the epoch, by Redis's clock. Reservations carry their times so (the
-- adapter reads them back as times): formatting dates in Lua cost every transition.
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function outbox(id, json, version)
  redis.call('XADD', KEYS[6], '*', 'key', id,
    'event', '{"version":' .. version .. ',"reservation":' .. json .. '}')
end

-- Records the category's earliest live deadline in the shard's `due`, or drops it.
local function refresh_due(member)
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', KEYS[5], first[2], member)
  else
    redis.call('ZREM', KEYS[5], member)
  end
end

-- Moves a live hold to `status`, gives its tickets back unless sold, and appends the change
-- to the outbox, in one atomic step. Returns the reservation's new JSON.
local function finish(member, id, reservation, status, now, version)
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
  redis.call('ZADD', KEYS[7], now, id)
  redis.call('ZADD', KEYS[8], now, member)
  return json
end
