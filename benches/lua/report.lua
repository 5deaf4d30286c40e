-- Shared by the wrk scripts of benches/side_by_side.sh: done() writes the run's figures as one
-- JSON object to $BENCH_OUT, and error samples (status + body) to $BENCH_OUT.samples.
-- A script that records its own errors per thread sets `bench_threads` (the thread objects from
-- setup) and keeps `chain_errors` (a number) and `chain_samples` (a string) in each thread.

function done(summary, latency, requests)
  local path = os.getenv("BENCH_OUT")
  local chain_errors, samples = 0, ""
  for _, t in ipairs(bench_threads or {}) do
    chain_errors = chain_errors + (tonumber(t:get("chain_errors")) or 0)
    samples = samples .. (t:get("chain_samples") or "")
  end
  local e = summary.errors
  local out = assert(io.open(path, "w"))
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
    '"max_us":%d,"chain_errors":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, chain_errors))
  out:close()
  if #samples > 0 then
    local s = assert(io.open(path .. ".samples", "w"))
    s:write(samples)
    s:close()
  end
end
