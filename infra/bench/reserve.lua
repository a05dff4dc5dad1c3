-- wrk script: every request is `POST <url path>` with a user token and a one-ticket hold.
--
--   TOKEN=... EVENT_ID=... wrk -s infra/bench/reserve.lua http://127.0.0.1:18080/reserve
--   wrk -s infra/bench/reserve.lua http://127.0.0.1:18080/reserve -- <token> <event_id>
--
-- Script args win over the environment. The request is built once per thread (there is no
-- request() function), so wrk spends no Lua time per request.

local function setup_request(token, event_id)
  if not token or token == "" or not event_id or event_id == "" then
    error("reserve.lua needs a token and an event id (TOKEN/EVENT_ID or script args)")
  end
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = string.format('{"event_id":"%s","category":"Floor","qty":1}', event_id)
end

-- Runs in each thread before its request is built; args are those after `--`.
function init(args)
  setup_request(args[1] or os.getenv("TOKEN"), args[2] or os.getenv("EVENT_ID"))
end
