-- proxy/xpio.lua MODE UPSTREAM: a TCP forwarder on xpio.sched. Prints its
-- port, takes one connection, connects to UPSTREAM (a loopback port) and
-- moves everything to it, with xpio.splice (MODE "splice": the bytes never
-- enter Lua) or read and write through Lua strings (MODE "rw"); then exits.
local xpio = require "xpio"
local sched = require "xpio.sched"

local mode, upstream = arg[1], assert(arg[2], "upstream port expected")
local server = assert(xpio.socket("TCP"))
assert(server:bind("127.0.0.1:0"))
assert(server:listen())
print((server:getsockname():match(":(%d+)$")))
io.stdout:flush()
sched.spawn(function()
  local from = assert(server:accept())
  local to = assert(xpio.socket("TCP"))
  assert(to:connect("127.0.0.1:" .. upstream))
  if mode == "splice" then
    while xpio.splice(from, to) do end
  else
    while true do
      local data = from:read(65536)
      if not data then break end
      assert(to:write(data))
    end
  end
  to:close()
  from:close()
end)
sched.run()
