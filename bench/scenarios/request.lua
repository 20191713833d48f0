-- wrk: POST the GraphQL body in $BODY (GET when there is none), with the bearer token in
-- $TOKEN if there is one. With $PAUSE_MS, each connection waits between 0 and twice that many
-- milliseconds before its next request, so requests come spread out at a chosen rate rather
-- than back to back; each thread seeds its own random numbers, or the connections of the two
-- threads would pause in step.
local body = os.getenv("BODY") or ""
if body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("TOKEN") or ""
if token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local pause = tonumber(os.getenv("PAUSE_MS") or "")
if pause then
  math.randomseed(tonumber(tostring({}):match("0x%x+")) or os.time())
  function delay()
    return math.random(0, 2 * pause)
  end
end
