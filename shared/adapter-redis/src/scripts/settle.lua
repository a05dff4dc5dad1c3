-- Confirms or cancels the caller's hold.
-- KEYS: 1-9 as in common.lua. ARGV: 1 category member, 2 reservation id, 3 user,
--       4 wanted status (confirmed | cancelled), 5 event version
-- Returns {'changed', json} | {'unchanged', json} | {'not_found'} | {'expired'}
--       | {'already_final', status} | {'stock_missing'}
local id = ARGV[2]
local json = redis.call('HGET', KEYS[4], id)
if not json then
  return {'not_found'}
end
local reservation = cjson.decode(json)
-- Someone else's reservation looks unknown, so ids can't be probed.
if reservation.user_id ~= ARGV[3] then
  return {'not_found'}
end
local status = reservation.status
if status == 'held' then
  local stock = redis.call('HMGET', KEYS[1], 'total', 'due', 'touched_second')
  if not stock[1] then
    return {'stock_missing'}
  end
  local deadline = redis.call('ZSCORE', KEYS[2], id)
  -- Past its deadline a hold can only expire; the sweeper records that. A held record
  -- without a deadline is a leftover of a category rebuilt without it: no live hold.
  local now, _, second = clock()
  deadline = tonumber(deadline)
  if not deadline or deadline <= now then
    return {'expired'}
  end
  local settled = finish(id, reservation, ARGV[4], now, ARGV[5])
  mark_touched(ARGV[1], now, second, stock[3])
  -- Only a hold that may be the category's first to end moves its first deadline.
  if not stock[2] or deadline <= tonumber(stock[2]) then
    refresh_due(ARGV[1])
  end
  return {'changed', settled}
end
if status == 'expired' then
  return {'expired'}
end
if status == ARGV[4] then
  return {'unchanged', json}
end
return {'already_final', status}
