-- wrk script: POST /api/v1/votes spread over many session tokens.
-- Environment: PAREDAO_BENCH_TOKENS (file with one token per line, required),
-- PAREDAO_BENCH_RATE (total votes/s across all connections; 0 or unset = as fast as possible),
-- PAREDAO_BENCH_CONNECTIONS (must equal wrk -c, for pacing), PAREDAO_BENCH_PAUSE_MS (overrides the pause).
local threads = {}
local thread_index = 0

function setup(thread)
  thread:set("index", thread_index)
  thread_index = thread_index + 1
  table.insert(threads, thread)
end

local participants = { "aline", "diego", "camila" }
local tokens = {}
local next_token = 1
local pause_ms = 0
counts = {}

function init(args)
  local path = os.getenv("PAREDAO_BENCH_TOKENS")
  for line in io.lines(path) do
    if #line > 0 then table.insert(tokens, line) end
  end
  -- Each thread starts at a different token so threads do not share rate limits.
  next_token = (index * 7919) % #tokens + 1
  local rate = tonumber(os.getenv("PAREDAO_BENCH_RATE") or "0") or 0
  local connections = tonumber(os.getenv("PAREDAO_BENCH_CONNECTIONS") or "1") or 1
  if rate > 0 then pause_ms = 1000 * connections / rate end
  -- bench/run.sh calibrates the pause so that pause + latency gives the target rate.
  local pause = tonumber(os.getenv("PAREDAO_BENCH_PAUSE_MS") or "")
  if pause then pause_ms = pause end
  counts = {}
end

function delay()
  return pause_ms
end

function request()
  local token = tokens[next_token]
  next_token = next_token % #tokens + 1
  local body = '{"participant":"' .. participants[math.random(3)] .. '"}'
  return wrk.format("POST", "/api/v1/votes", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, n in pairs(c) do totals[status] = (totals[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(totals) do table.insert(parts, string.format('"%d":%d', status, n)) end
  io.write(string.format('RESULT {"statuses":{%s},"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"errors":%d}\n',
    table.concat(parts, ","), summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout + summary.errors.status))
end
