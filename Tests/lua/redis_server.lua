--- A redis-server of the tests' own: on a free loopback port, without
--- persistence, started with xpio.spawn and stopped by its process (never by
--- name). Used by luasocket_redis_spec.lua and readme_luasocket_spec.lua.
local xpio = require "xpio"
local sched = require "xpio.sched"

local M = {}

-- A free loopback port: bound, read, released.
local function free_port()
  local s = assert(xpio.socket("TCP"))
  assert(s:bind("127.0.0.1:0"))
  local port = tonumber(s:getsockname():match(":(%d+)$"))
  s:close()
  return port
end

--- Starts redis-server and waits (30 s at most) until it answers PING;
--- returns its process and port.
function M.start()
  local port = free_port()
  local process = assert(xpio.spawn({ "redis-server", "--port", tostring(port), "--bind", "127.0.0.1",
    "--save", "", "--appendonly", "no" }, xpio.env, { [1] = "null", [2] = "null" }))
  local deadline = xpio.gettime() + 30
  while true do
    local s = assert(xpio.socket("TCP"))
    local ok = false
    sched.spawn(function()
      if s:connect("127.0.0.1:" .. port) and s:write("PING\r\n") then ok = s:readline() == "+PONG" end
    end)
    sched.run()
    s:close()
    if ok then return process, port end
    assert(xpio.gettime() < deadline, "redis-server did not start in 30 s")
    sched.spawn(function() sched.sleep(0.05) end)
    sched.run()
  end
end

--- Kills the server (whatever state it is in) and reaps it.
function M.stop(process)
  if not process then return end
  process:kill("KILL")
  sched.spawn(function() process:wait() end)
  sched.run()
  process:close()
end

return M
