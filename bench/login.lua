-- Logins, each of the next of BENCH_USERS in turn (one account would meet the limit of 30
-- successful logins a minute): each starts a session (argon2id verify + one INSERT).
local users, password, turn = {}, os.getenv("BENCH_PASSWORD"), 0
for name in string.gmatch(os.getenv("BENCH_USERS"), "[^,]+") do users[#users + 1] = name end

function request()
  turn = turn + 1
  local body = '{"username":"' .. users[turn % #users + 1] .. '","password":"' .. password .. '"}'
  return wrk.format("POST", "/auth/login", {["Content-Type"] = "application/json"}, body)
end
