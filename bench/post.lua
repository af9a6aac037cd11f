-- wrk script: POST one JSON-RPC call; optional pacing for fixed-rate runs; prints percentiles as one line.
-- Pacing: WRK_DELAY_MS (env) is the pause each connection takes between calls, so the offered rate is about
-- connections * 1000 / (delay + latency). Well below capacity latency << delay, so the rate is near fixed.
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
wrk.headers["Content-Type"] = "application/json"

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
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d p999_us=%d errors=%d non2xx=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
