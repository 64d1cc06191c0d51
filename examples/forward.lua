-- A TCP port forwarder: listen on one port, and for each connection open one
-- to a target and copy bytes both ways with the blocking read/write, one task
-- per direction. To show it working, the example also runs a small target
-- server (it answers in upper case) and one client that talks to the target
-- through the forwarder; then it closes everything and exits.
--
--   LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/forward.lua
local xpio = require "xpio"
local sched = require "xpio.sched"

local function listen()
  local s = assert(xpio.socket("TCP"))
  assert(s:setsockopt("SO_REUSEADDR", true))
  assert(s:bind("127.0.0.1:0"))
  assert(s:listen())
  return s, assert(s:getsockname())
end

-- Write all of `data`: the blocking write already writes it all, waiting as
-- often as it must (try_write is the one that writes what fits); this only
-- turns its result into true, or nil, message.
local function write_all(sock, data)
  local n, err = sock:write(data)
  if not n then return nil, err end
  return true
end

-- Accept connections until `listener` is closed; serve each in its own task.
local function serve(listener, handler)
  return sched.spawn(function()
    while true do
      local conn = listener:accept()
      if not conn then break end      -- nil once the listener is closed
      sched.spawn(handler, conn)
    end
  end)
end

-- The target: reply with the upper-case text until the peer stops sending.
local target, target_addr = listen()
local target_task = serve(target, function(conn)
  for data in function() return conn:read(4096) end do
    assert(write_all(conn, data:upper()))
  end
  conn:close()
end)

-- Copy `from` to `to` until end of stream, then pass the end on.
local function copy(from, to)
  local total = 0
  while true do
    local data = from:read(65536)
    if not data then break end
    if not write_all(to, data) then break end
    total = total + #data
  end
  to:shutdown("w")                    -- the other side now reads end of stream
  return total
end

-- The forwarder.
local forwarder, forward_addr = listen()
local forwarded = {}
local forward_task = serve(forwarder, function(inbound)
  local outbound = assert(xpio.socket("TCP"))
  assert(outbound:connect(target_addr))
  local up = sched.spawn(copy, inbound, outbound)
  local down = sched.spawn(copy, outbound, inbound)
  forwarded[#forwarded + 1] = { up = sched.join(up), down = sched.join(down) }
  inbound:close()
  outbound:close()
end)
print(("forwarding %s -> %s"):format(forward_addr, target_addr))

-- One client, talking to the target through the forwarder.
sched.spawn(function()
  local sock = assert(xpio.socket("TCP"))
  assert(sock:connect(forward_addr))
  local request = "hello through the forwarder\n" .. ("x"):rep(100000) .. "\n"
  assert(write_all(sock, request))
  assert(sock:shutdown("w"))          -- done sending
  local reply = {}
  for data in function() return sock:read(65536) end do reply[#reply + 1] = data end
  sock:close()
  reply = table.concat(reply)
  assert(reply == request:upper(), "reply differs from the request in upper case")
  print(("client got back %d bytes: %s ..."):format(#reply, reply:match("^[^\n]*")))

  -- Done: closing the listeners ends both accept loops.
  forwarder:close()
  target:close()
  sched.join(forward_task)
  sched.join(target_task)
end)

sched.run()
for _, f in ipairs(forwarded) do
  print(("forward: %d bytes up, %d bytes down"):format(f.up, f.down))
end
