-- Starts a category's stock, all of it available; a category that exists is left alone.
-- KEYS: 1 stock. ARGV: 1 total, 2 max per user (0: no limit). Returns 1 if created.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'available', ARGV[1], 'held', 0, 'sold', 0,
  'max_per_user', ARGV[2])
return 1
