-- wrk script: POST JSON-RPC calls; optional pacing for fixed-rate runs; prints the summary as one line.
--
-- WRK_WORKLOAD (env) picks the bodies:
--   identical (default): every call is the same eth_blockNumber, so a gateway may coalesce them;
--   distinct: every call is eth_getBalance of a different address at "latest", which no proxy can cache or
--     coalesce (one hop against one hop).
-- Pacing: WRK_DELAY_MS (env) is the pause each connection takes between calls, so the offered rate is about
-- connections * 1000 / (delay + latency). Well below capacity latency << delay, so the rate is near fixed.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'

local workload = os.getenv("WRK_WORKLOAD") or "identical"
if workload == "distinct" then
  -- A per-run random prefix and a counter: every address differs within a run and across runs.
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  local prefix = string.format("%08x%08x%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff),
    math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  local n = 0
  function request()
    n = n + 1
    local body = string.format(
      '{"jsonrpc":"2.0","id":%d,"method":"eth_getBalance","params":["0x%s%08x","latest"]}', n, prefix, n)
    return wrk.format(nil, nil, nil, body)
  end
elseif workload ~= "identical" then
  error("WRK_WORKLOAD must be identical or distinct, not " .. workload)
end

local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

local bad = 0
function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT rps=%.1f requests=%d p50_us=%d p99_us=%d p999_us=%d errors=%d non2xx=%d\n",
    summary.requests / secs, summary.requests, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status))
end
