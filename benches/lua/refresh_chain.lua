-- refresh_token grant with rotation: each request needs the refresh token the previous answer
-- returned. Run with as many threads as connections (wrk -tN -cN): one connection per thread,
-- so requests and responses of a thread alternate strictly and the chain is per connection.
-- $BENCH_TOKENS: a file with one fresh refresh token per line (at least N);
-- $BENCH_AUTH: the client's Authorization header value; $BENCH_PATH: the token endpoint path.
-- A thread whose answer is not 200 with a new refresh_token records it and stops (its chain is
-- broken: retrying the same token would be a reuse).
local path = os.getenv("BENCH_PATH")
local auth = os.getenv("BENCH_AUTH")

-- main state: hand one token to each thread
local tokens = nil
local next_token = 0
bench_threads = {}
function setup(thread)
  if tokens == nil then
    tokens = {}
    for line in io.lines(os.getenv("BENCH_TOKENS")) do
      if #line > 0 then table.insert(tokens, line) end
    end
  end
  next_token = next_token + 1
  thread:set("rt", tokens[next_token] or "")
  table.insert(bench_threads, thread)
end

-- thread states
chain_errors = 0
chain_samples = ""
local headers = { ["Authorization"] = auth, ["Content-Type"] = "application/x-www-form-urlencoded" }

function request()
  return wrk.format("POST", path, headers, "grant_type=refresh_token&refresh_token=" .. rt)
end

function response(status, hdrs, body)
  local new = nil
  if status == 200 then
    new = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  end
  if new then
    rt = new
  else
    chain_errors = chain_errors + 1
    if #chain_samples < 2000 then
      chain_samples = chain_samples .. string.format("HTTP %d %s\n", status, body:sub(1, 300))
    end
    wrk.thread:stop()
  end
end

dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
