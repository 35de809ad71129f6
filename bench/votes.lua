-- wrk script: POST /api/v1/votes spread over many session tokens.
-- Environment: PAREDAO_BENCH_TOKENS (file with one token per line, required),
-- PAREDAO_BENCH_RATE (total votes/s across all connections; 0 or unset = as fast as possible),
-- PAREDAO_BENCH_CONNECTIONS (must equal wrk -c, for pacing), PAREDAO_BENCH_PAUSE_MS (overrides the pause).
--
-- The requests are built once in init() (one per token, participants in turn), so wrk
-- spends its CPU on the sockets, not on Lua; and there is no response() callback, which
-- would make wrk parse every answer into Lua tables. The only 2xx the vote route answers
-- is 202, so accepted = requests - responses with a status >= 400 (wrk's status errors).
local threads = {}
local thread_index = 0

function setup(thread)
  thread:set("index", thread_index)
  thread_index = thread_index + 1
  table.insert(threads, thread)
end

local participants = { "aline", "diego", "camila" }
local requests = {}
local next_request = 1
-- The pause is read when the script loads, so that wrk sees delay() only when pacing:
-- a delay() returning 0 would still cost a timer per request.
local pause_ms = 0
do
  local rate = tonumber(os.getenv("PAREDAO_BENCH_RATE") or "0") or 0
  local connections = tonumber(os.getenv("PAREDAO_BENCH_CONNECTIONS") or "1") or 1
  if rate > 0 then pause_ms = 1000 * connections / rate end
  -- bench/run.sh calibrates the pause so that pause + latency gives the target rate.
  local pause = tonumber(os.getenv("PAREDAO_BENCH_PAUSE_MS") or "")
  if pause then pause_ms = pause end
end
if pause_ms > 0 then
  function delay() return pause_ms end
end

function init(args)
  local path = os.getenv("PAREDAO_BENCH_TOKENS")
  local i = 0
  for line in io.lines(path) do
    if #line > 0 then
      i = i + 1
      table.insert(requests, wrk.format("POST", "/api/v1/votes", {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. line,
      }, '{"participant":"' .. participants[i % #participants + 1] .. '"}'))
    end
  end
  -- Each thread starts at a different token so threads do not share rate limits.
  next_request = (index * 7919) % #requests + 1
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function done(summary, latency, requests)
  local failed = summary.errors.status
  io.write(string.format('RESULT {"accepted":%d,"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"errors":%d}\n',
    summary.requests - failed, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + failed))
end
