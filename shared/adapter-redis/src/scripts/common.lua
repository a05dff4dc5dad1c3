-- The start of every script: time and the one place a hold ends.
-- Transition scripts take the keys of `CategoryKeys::transition` (keys.rs), in this order:
--   1 stock, 2 deadlines, 3 users (the category's);
--   4 holds, 5 due, 6 outbox, 7 finished, 8 touched, 9 key-of (its shard's).
-- Time is Redis's own: every ticketd process agrees on deadlines, expiry and rates.

local function now_us()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end

-- Microseconds since the epoch in RFC 3339 (UTC), as reservations carry their times.
-- Days to a civil date: Howard Hinnant's civil_from_days.
local function rfc3339(us)
  local secs = math.floor(us / 1000000)
  local days = math.floor(secs / 86400)
  local rest = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', year, month, day,
    math.floor(rest / 3600), math.floor(rest % 3600 / 60), rest % 60, us % 1000000)
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
  reservation.updated_at = rfc3339(now)
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
  local ms = math.floor(now / 1000)
  redis.call('ZADD', KEYS[7], ms, id)
  redis.call('ZADD', KEYS[8], ms, member)
  return json
end
