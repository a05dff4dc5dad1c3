-- One round of the admit timer in an event's room: forgets admissions lapsed for long, records
-- whether the event is sold out, then admits fans from the head of the queue, as many as the
-- pace (a bucket of up to one second's worth) and ARGV[1] allow. Rounds of several processes
-- share the bucket, so together they keep the pace and admit no one twice.
-- KEYS: as room_configure.lua. ARGV: 1 admitted, unexpired fans allowed at most after this
-- round, 2 sold out (0/1), 3 how long a lapsed admission is kept (ms: meanwhile the fan's
-- place reads as lapsed), 4 how long the queue stays once it stops moving (ms).
-- Returns {fans still waiting, then each admitted fan's wait in ms}.
local room = redis.call('HMGET', KEYS[1], 'rate', 'ttl', 'opens_at', 'credit', 'last', 'sold_out')
if not room[1] then
  return {0}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))

local changed = false
if (room[6] or '0') ~= ARGV[2] then
  redis.call('HSET', KEYS[1], 'sold_out', ARGV[2])
  changed = true
end
local rate = tonumber(room[1])
local last = tonumber(room[5])
local since = 1
if last then
  since = math.max(0, now - last) / 1000
end
local credit = math.min(rate, (tonumber(room[4]) or 0) + since * rate)

local reply = {0}
local opens_at = tonumber(room[3])
if ARGV[2] == '0' and not (opens_at and now < opens_at) then
  local live = redis.call('ZCOUNT', KEYS[3], string.format('(%d', now), '+inf')
  local count = math.min(math.floor(credit), tonumber(ARGV[1]) - live)
  if count > 0 then
    local popped = redis.call('ZPOPMIN', KEYS[2], count)
    local admitted_until = now + tonumber(room[2]) * 1000
    for i = 1, #popped, 2 do
      redis.call('ZADD', KEYS[3], admitted_until, popped[i])
      local waited_from = tonumber(popped[i + 1])
      if opens_at and waited_from < opens_at then
        waited_from = opens_at
      end
      reply[#reply + 1] = now - waited_from
    end
    local admitted = #popped / 2
    if admitted > 0 then
      credit = credit - admitted
      redis.call('HINCRBY', KEYS[1], 'admitted_total', admitted)
      redis.call('PEXPIREAT', KEYS[2], now + tonumber(ARGV[4]))
      redis.call('PEXPIREAT', KEYS[3], now + tonumber(ARGV[4]))
      changed = true
    end
  end
end
if changed then
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
redis.call('HSET', KEYS[1], 'credit', credit, 'last', now)
reply[1] = redis.call('ZCARD', KEYS[2])
return reply
