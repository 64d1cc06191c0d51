-- A short tour of XPIO: a TCP echo exchange between two coroutines, and a
-- spawned child whose output is read through a pipe.
local xpio = require "xpio"
local sched = require "xpio.sched"

local server = assert(xpio.socket("TCP"))
assert(server:setsockopt("SO_REUSEADDR", true))
assert(server:bind("127.0.0.1:0"))
assert(server:listen())
local address = assert(server:getsockname())
print("echo server listening on " .. address)

sched.spawn(function()
  local conn = assert(server:accept())
  while true do
    local data = conn:read(4096)
    if not data then break end
    assert(conn:write(data))
  end
  conn:close()
  server:close()
end)

sched.spawn(function()
  local client = assert(xpio.socket("TCP"))
  assert(client:connect(address))
  for _, word in ipairs({ "hello", "from", "xpio" }) do
    assert(client:write(word))
    print("client sent " .. word .. ", got back " .. assert(client:read(100)))
  end
  client:close()
end)

sched.spawn(function()
  local r, w = assert(xpio.pipe())
  local child = assert(xpio.spawn({ "echo", "hello from a child process" }, xpio.env, { [1] = w, [2] = 2 }))
  local out = {}
  for chunk in function() return r:read(4096) end do out[#out + 1] = chunk end
  r:close()
  local how, code = child:wait()
  print(("child %d said %q and ended with %s %d"):format(child:pid(), table.concat(out):gsub("\n$", ""), how, code))
end)

sched.run()
print("demo done")
