-- The start of every script: time, the outbox and the `touched` mark.
-- Transition scripts take the keys of `CategoryKeys::transition` (keys.rs), in this order:
--   1 stock, 2 deadlines, 3 users (the category's);
--   4 holds, 5 due, 6 outbox, 7 touched, 8 finished, 9 key-of (its shard's).
-- The stock hash also keeps `due` (never below the category's score in its shard's `due`,
-- and there only while the category is) and `touched_second`, so that the hot path reads
-- them with the counters instead of writing both indexes every time.
-- Time is Redis's own (`clock`): every ticketd process agrees on deadlines, expiry and rates.

-- Milliseconds since the epoch by Redis's clock, as a number and as text, and the second
-- as text. Reservations carry their times so (the adapter reads them back as times):
-- formatting dates in Lua cost every transition. Made from TIME's text because Lua formats
-- a number (`..`, tostring, an argument of redis.call) with a %.14g printf costing
-- microseconds.
local function clock()
  local time = redis.call('TIME')
  local text = time[1] .. string.sub('00000' .. time[2], -6, -4)
  return tonumber(text), text, time[1]
end

local function outbox(id, json, version)
  redis.call('XADD', KEYS[6], '*', 'key', id,
    'event', '{"version":' .. version .. ',"reservation":' .. json .. '}')
end

-- Marks the category changed in its shard's `touched`, at most once a second: the stock
-- hash keeps the second of its last mark (`marked`), and `sale_changes` reads a second
-- back, so no change is missed and a busy category costs one ZADD a second, not one a
-- transition.
local function mark_touched(member, now, second, marked)
  if marked ~= second then
    redis.call('ZADD', KEYS[7], now, member)
    redis.call('HSET', KEYS[1], 'touched_second', second)
  end
end
