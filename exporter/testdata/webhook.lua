-- wrk script: every request posts one realistic media server event, as
-- LiveSwitch's server webhook sends it, for SERVERS media servers per wrk
-- thread (each thread has servers of its own, so one server's events always
-- go out in order). Each server goes through started, registered,
-- unregistered, registered, unregistered, stopped, with rising timestamps:
-- every event is applied.
--
--   SERVERS=2000 wrk -t2 -c64 -d15s --latency -s exporter/testdata/webhook.lua http://127.0.0.1:9818/webhook

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

local actions = { "started", "registered", "unregistered", "registered", "unregistered", "stopped" }
local servers, thread_id, next_server, sent, base
local regions = { "us-east", "us-west", "eu-west", "ap-south" }

function init(args)
  servers = tonumber(os.getenv("SERVERS") or "2000")
  thread_id = tid or 1
  next_server = 0
  sent = {}
  -- ten minutes ago, in milliseconds: within any future skew, old enough
  -- that every event of the run stays in the past
  base = (os.time() - 600) * 1000
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local s = next_server
  next_server = (next_server + 1) % servers
  local n = sent[s] or 0
  sent[s] = n + 1
  local id = string.format("ms-%d-%05d", thread_id, s)
  local body = string.format(
    '{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.%s","mediaserver":{"id":"%s",' ..
    '"deploymentId":"deployment-%d","region":"%s","machineName":"%s","version":"1.24.2.0",' ..
    '"coreCount":16,"operatingSystem":"linux","operatingSystemVersion":"6.1","architecture":"x64"}}',
    base + n, actions[n % #actions + 1], id, s % 3 + 1, regions[s % #regions + 1], id)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status >= 300 then
    io.stderr:write("answer " .. status .. ": " .. body .. "\n")
  end
end
