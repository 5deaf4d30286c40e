-- One fixed request, repeated: $BENCH_METHOD (default GET), $BENCH_BODY (form-encoded, optional),
-- $BENCH_AUTH (Authorization header value, optional). No response() callback, so wrk stays
-- cheap on the shared CPUs; non-2xx/3xx answers are counted by wrk (summary.errors.status) and
-- side_by_side.sh probes the endpoint again with curl to show one.
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
if body and #body > 0 then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH")
if auth and #auth > 0 then
  wrk.headers["Authorization"] = auth
end
dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
