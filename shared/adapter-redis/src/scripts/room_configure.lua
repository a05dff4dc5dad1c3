-- Sets an event's waiting room up, changes it, or (ARGV[1] == '0') removes it with its queue.
-- KEYS: 1 room (hash), 2 queue (zset: fan -> when they joined, ms; or their draw, below
-- opens_at), 3 admitted (zset: fan -> admitted until, ms).
-- ARGV: 1 enabled (0/1), 2 admit_per_second, 3 admission_ttl (s), 4 opens_at (ms, or '').
if ARGV[1] == '0' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 0
end
redis.call('HSET', KEYS[1], 'rate', ARGV[2], 'ttl', ARGV[3], 'opens_at', ARGV[4])
return redis.call('HINCRBY', KEYS[1], 'version', 1)
