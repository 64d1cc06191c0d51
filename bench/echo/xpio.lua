-- echo/xpio.lua: a line echo server on xpio.sched (readline, write),
-- serving until killed; prints its port. For the memory rows: its RSS
-- after bursts of connections.
local xpio = require "xpio"
local sched = require "xpio.sched"

local server = assert(xpio.socket("TCP"))
assert(server:bind("127.0.0.1:0"))
assert(server:listen(1024))
print((server:getsockname():match(":(%d+)$")))
io.stdout:flush()
sched.spawn(function()
  while true do
    local c = server:accept()
    if c then
      sched.spawn(function()
        while true do
          local line = c:readline()
          if not line or not c:write(line .. "\n") then break end
        end
        c:close()
      end)
    end
  end
end)
sched.run()
