--- bench/redis/client.lua IMPL TASKS OPS PORT: redis-lua (Debian lua-redis,
--- unmodified) doing OPS commands (SET and GET in turn, every GET checked)
--- against redis-server on 127.0.0.1:PORT, and printing commands per second.
---
---   IMPL = luasocket   plain LuaSocket, one connection (TASKS must be 1)
---   IMPL = xpio        xpio.luasocket under xpio.sched, TASKS tasks with a
---                      connection each, OPS split between them
local bench = require "bench"

local impl, tasks, ops, port = arg[1], bench.int(2), bench.int(3), bench.int(4)

if impl == "xpio" then require("xpio.luasocket").install() end
local path = assert(package.searchpath("redis", "/usr/share/lua/5.3/?.lua;/usr/share/lua/5.4/?.lua"))
local redis = assert(loadfile(path))()
local now = require("xpio").gettime

-- One connection's share of the work: returns the commands it checked.
local function work(id, count)
  local client = redis.connect({ host = "127.0.0.1", port = port, tcp_nodelay = true })
  local done = 0
  for i = 1, count // 2 do
    local key, value = "bench:" .. id .. ":" .. (i % 1000), "v" .. i
    bench.check(client:set(key, value) == true, "SET %s", key)
    bench.check(client:get(key) == value, "GET %s", key)
    done = done + 2
  end
  client:quit()
  return done
end

local total, t0 = 0, now()
if impl == "luasocket" then
  bench.check(tasks == 1, "plain LuaSocket runs one connection")
  total = work(1, ops)
elseif impl == "xpio" then
  local sched = require "xpio.sched"
  for t = 1, tasks do
    sched.spawn(function()
      local done = work(t, ops // tasks)   -- before the sum: work yields
      total = total + done
    end)
  end
  sched.run()
else
  error("IMPL is luasocket or xpio")
end
local elapsed = now() - t0
bench.check(total >= ops - 2 * tasks, "only %d commands done", total)
bench.result(total / elapsed)
