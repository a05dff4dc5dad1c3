-- Starts a category's stock, all of it available; a category that exists is left alone.
-- KEYS: 1 stock, 2 the shard's touched. ARGV: 1 category member, 2 total, 3 max per user (0: none).
-- Returns 1 if created.
local created = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'total', ARGV[2], 'available', ARGV[2], 'held', 0, 'sold', 0,
    'max_per_user', ARGV[3])
  created = 1
end
local now = clock()
redis.call('ZADD', KEYS[2], now, ARGV[1])
return created
