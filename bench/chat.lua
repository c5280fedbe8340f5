-- wrk script for bench/run.py: POST one request per call (chat, streamed or not, or
-- embeddings) and check every response body.
-- Env (set by run.py):
--   BENCH_PATH       the request path (/v1/chat/completions, /v1/embeddings)
--   BENCH_BODY       the request body: loadgen.request_for(mode)'s bytes
--   BENCH_EXPECT     strings separated by "|" that every 2xx body must contain
--   BENCH_AUTH       Authorization header value (optional)
-- Prints one "BENCHJSON {...}" line at the end; run.py parses it.
local expect = {}
for s in string.gmatch(os.getenv("BENCH_EXPECT") or "", "[^|]+") do expect[#expect + 1] = s end

wrk.method = "POST"
wrk.path = assert(os.getenv("BENCH_PATH"), "BENCH_PATH is not set")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
wrk.body = assert(os.getenv("BENCH_BODY"), "BENCH_BODY is not set")

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; sample = nil end

function response(status, headers, body)
  -- wrk counts non-2xx itself (summary.errors.status); "bad" counts 2xx replies whose body
  -- misses any expected string. The first failure of either kind is kept as a sample.
  if status < 200 or status > 299 then
    if not sample then sample = tostring(status) .. " " .. (body or ""):sub(1, 200) end
    return
  end
  for i = 1, #expect do
    if not body or not body:find(expect[i], 1, true) then
      bad = bad + 1
      if not sample then sample = tostring(status) .. " " .. (body or ""):sub(1, 200) end
      return
    end
  end
end

function done(summary, latency, requests)
  local nbad, s = 0, ""
  for _, t in ipairs(threads) do
    nbad = nbad + (t:get("bad") or 0)
    local ts = t:get("sample")
    if ts and s == "" then s = ts end
  end
  s = s:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("%c", " ")
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_timeout":%d,"non2xx":%d,"bad_body":%d,"bad_sample":"%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.timeout,
    e.status, nbad, s))
end
