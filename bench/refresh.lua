-- One connection per wrk thread, each rotating its own session's refresh token: the token in
-- each response is the one sent next. Initial tokens come from the file in BENCH_TOKENS.
local tokens, counter, threads = {}, 1, {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end

function setup(thread)
  thread:set("token", tokens[counter])
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  failures = 0
end

function request()
  return wrk.format("POST", "/auth/refresh", {["Content-Type"] = "application/json"},
                    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    token = body:match('"refresh_token":"([^"]+)"')
  else
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do failed = failed + thread:get("failures") end
  io.write(string.format("FAILED %d\n", failed))
end
