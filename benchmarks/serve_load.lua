-- wrk script for bench_serve.py: POST /v1/tag with catalog photos (multipart), cycled; prints one JSON line.
-- usage: wrk -t1 -cN -dS -s serve_load.lua URL -- photo1.jpg photo2.jpg ...
local bodies = {}
local boundary = "vislabbench"
local n = 0

function init(args)
  for _, path in ipairs(args) do
    local f = assert(io.open(path, "rb"))
    local data = f:read("*a")
    f:close()
    bodies[#bodies + 1] = "--" .. boundary .. "\r\n" ..
      'Content-Disposition: form-data; name="file"; filename="p.jpg"\r\n' ..
      "Content-Type: image/jpeg\r\n\r\n" .. data .. "\r\n--" .. boundary .. "--\r\n"
  end
end

function request()
  n = n + 1
  local body = bodies[(n % #bodies) + 1]
  return wrk.format("POST", "/v1/tag", {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
end

function done(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout
  io.write(string.format('{"requests": %d, "seconds": %.3f, "errors": %d, "p50_ms": %.2f, "p95_ms": %.2f, ' ..
    '"p99_ms": %.2f}\n', summary.requests, summary.duration / 1e6, bad, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
