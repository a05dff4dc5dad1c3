-- Confirms or cancels the caller's hold.
-- ARGV: 1 reservation id, 2 user, 3 wanted status (confirmed | cancelled), 4 now (ms),
--       5 now (RFC 3339), 6 event version
-- Returns {'changed', json} | {'unchanged', json} | {'not_found'} | {'expired'} | {'already_final', status}
local json = redis.call('HGET', KEYS[2], ARGV[1])
if not json then
  return {'not_found'}
end
local reservation = cjson.decode(json)
-- Someone else's reservation looks unknown, so ids can't be probed.
if reservation.user_id ~= ARGV[2] then
  return {'not_found'}
end
local status = reservation.status
if status == 'held' then
  local deadline = redis.call('ZSCORE', KEYS[3], ARGV[1])
  -- Past its deadline a hold can only expire; the sweeper records that.
  if not deadline or tonumber(deadline) <= tonumber(ARGV[4]) then
    return {'expired'}
  end
  return {'changed', finish(ARGV[1], reservation, ARGV[3], ARGV[5], ARGV[6])}
end
if status == 'expired' then
  return {'expired'}
end
if status == ARGV[3] then
  return {'unchanged', json}
end
return {'already_final', status}
