-- wrk script: send every request of a list exactly once, then stop (bench/load_mix.py).
-- Usage: wrk --threads T --connections T ... -s wrk_mix.lua URL -- LIST_FILE T
-- LIST_FILE holds one request a line, tab-separated: kind, method, path, and the
-- Authorization header's value ("-": none). Thread k (one keep-alive connection, so one
-- request in flight) sends lines k+1, k+1+T, k+1+2T, ... and stops itself after the answer to
-- its last one, printing "stopped k": wrk's main thread sleeps for --duration whatever its
-- threads do, so the caller sends it SIGINT once every thread has stopped.
-- At the end one JSON line: wrk's totals and latency, and per kind the answers and non-2xx.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

local mine, kinds = {}, {}
local sent = 0
local stopped, verified = false, false
answers, non_2xx = {}, {} -- globals: done() reads them with thread:get

function init(args)
  local nthreads, k = tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if k % nthreads == id then
      local kind, method, path, auth = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
      mine[#mine + 1] = wrk.format(method, path, auth ~= "-" and {Authorization = auth} or {})
      kinds[#kinds + 1] = kind
    end
    k = k + 1
  end
end

local function stop()
  if not stopped then
    stopped = true
    io.write("stopped ", id, "\n")
    io.stdout:flush()
  end
  wrk.thread:stop()
end

function request()
  if id == 0 and not verified then
    -- wrk 4 calls thread 0's request() once before the run to check it parses: not sent
    verified = true
    return mine[1]
  end
  sent = sent + 1
  if sent > #mine then
    -- only after a lost connection (its request unanswered): no more requests of the list
    stop()
    return wrk.format("HEAD", "/api/v1/levels")
  end
  return mine[sent]
end

function response(status, headers, body)
  if sent > #mine then
    return
  end
  local kind = kinds[sent]
  answers[kind] = (answers[kind] or 0) + 1
  if status < 200 or status > 299 then
    non_2xx[kind] = (non_2xx[kind] or 0) + 1
  end
  if sent == #mine then
    stop()
  end
end

local function add(into, counts)
  for kind, n in pairs(counts) do
    into[kind] = (into[kind] or 0) + n
  end
end

local function json_counts(counts)
  local parts = {}
  for kind, n in pairs(counts) do
    parts[#parts + 1] = string.format('"%s": %d', kind, n)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function done(summary, latency, requests)
  local all_answers, all_non_2xx = {}, {}
  for _, thread in ipairs(threads) do
    add(all_answers, thread:get("answers"))
    add(all_non_2xx, thread:get("non_2xx"))
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"socket_errors": %d, "non_2xx": %d, "answers": %s, "non_2xx_by_kind": %s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, e.status,
    json_counts(all_answers), json_counts(all_non_2xx)))
end
