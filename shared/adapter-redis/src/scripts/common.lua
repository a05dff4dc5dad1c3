-- The start of every script: time and the outbox.
-- Transition scripts take the keys of `CategoryKeys::transition` (keys.rs), in this order:
--   1 stock, 2 deadlines, 3 users (the category's);
--   4 holds, 5 due, 6 outbox, 7 touched, 8 finished, 9 key-of (its shard's).
-- Time is Redis's own (`clock`): every ticketd process agrees on deadlines, expiry and rates.

-- Milliseconds since the epoch by Redis's clock, as a number and as text. Reservations carry their times so (the adapter reads them back as times):
-- formatting dates in Lua cost every transition. Made from TIME's text because Lua formats
-- a number (`..`, tostring, an argument of redis.call) with a %.14g printf costing
-- microseconds.
local function clock()
  local time = redis.call('TIME')
  local text = time[1] .. string.sub('00000' .. time[2], -6, -4)
  return tonumber(text), text
end

local function outbox(id, json, version)
  redis.call('XADD', KEYS[6], '*', 'key', id,
    'event', '{"version":' .. version .. ',"reservation":' .. json .. '}')
end
