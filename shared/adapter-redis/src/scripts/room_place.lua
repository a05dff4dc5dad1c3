-- A fan's place in an event's queue; with ARGV[2] == '1', queues them first if they are not
-- there (a fan whose admission lapsed goes to the back).
-- KEYS: as room_configure.lua. ARGV: 1 fan, 2 join (0/1), 3 draw (0..1, for joins before
-- opens_at), 4 how long the queue stays once it stops moving (ms, from opening at the
-- earliest).
-- Returns {status, position, admitted until (ms), version, admitted_total, sold_out, created}
-- with status 0 not queued, 1 waiting, 2 admitted, 3 sold out, 4 admission lapsed; or {-1}
-- when the event has no waiting room.
local room = redis.call('HMGET', KEYS[1], 'rate', 'opens_at', 'version', 'admitted_total', 'sold_out')
if not room[1] then
  return {-1}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local version, total = tonumber(room[3]) or 0, tonumber(room[4]) or 0
local sold_out = room[5] == '1' and 1 or 0

local admitted_until = tonumber(redis.call('ZSCORE', KEYS[3], ARGV[1]))
if admitted_until and admitted_until > now then
  return {2, 0, admitted_until, version, total, sold_out, 0}
end
local created = 0
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  if ARGV[2] ~= '1' then
    if admitted_until then
      return {4, 0, admitted_until, version, total, sold_out, 0}
    end
    return {0, 0, 0, version, total, sold_out, 0}
  end
  if admitted_until then
    redis.call('ZREM', KEYS[3], ARGV[1])
  end
  local opens_at = tonumber(room[2])
  local score = now
  if opens_at and now < opens_at then
    score = math.floor(tonumber(ARGV[3]) * opens_at)
  end
  redis.call('ZADD', KEYS[2], score, ARGV[1])
  created = 1
  local kept_until = math.max(now, opens_at or 0) + tonumber(ARGV[4])
  redis.call('PEXPIREAT', KEYS[2], kept_until)
  redis.call('PEXPIREAT', KEYS[3], kept_until)
end
local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
return {sold_out == 1 and 3 or 1, rank + 1, 0, version, total, sold_out, created}
