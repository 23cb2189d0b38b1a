-- wrk script: the Pushgateway alternative to the webhook — every request
-- PUTs one media server's state, as a user scripting around the Pushgateway
-- would, to a group per server (SERVERS per wrk thread).
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

local servers, thread_id, next_server
local states = { "running", "registered", "unregistered", "stopped" }

function init(args)
  servers = tonumber(os.getenv("SERVERS") or "2000")
  thread_id = tid or 1
  next_server = 0
  wrk.method = "PUT"
  wrk.headers["Content-Type"] = "text/plain; version=0.0.4"
end

function request()
  local s = next_server
  next_server = (next_server + 1) % servers
  local id = string.format("ms-%d-%05d", thread_id, s)
  local state = states[math.random(#states)]
  local lines = {}
  for _, st in ipairs(states) do
    table.insert(lines, string.format('liveswitch_server_state{state="%s"} %d', st, st == state and 1 or 0))
  end
  table.insert(lines, "liveswitch_server_cores 16")
  table.insert(lines, string.format("liveswitch_server_last_event_timestamp_seconds %d", os.time()))
  return wrk.format(nil, "/metrics/job/liveswitch/origin/mediaserver/id/" .. id, nil, table.concat(lines, "\n") .. "\n")
end
