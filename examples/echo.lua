-- A TCP echo server and a few clients, all tasks of one xpio.sched loop.
--
-- The server accepts connections and echoes each one in its own task. Every
-- client sends a few lines, checks that they come back, and closes. When all
-- clients are done, the main task closes the listening socket: that wakes the
-- task blocked in accept(), which then returns nil and ends the server.
--
--   LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/echo.lua
local xpio = require "xpio"
local sched = require "xpio.sched"

local CLIENTS, LINES = 4, 3

local listener = assert(xpio.socket("TCP"))
assert(listener:setsockopt("SO_REUSEADDR", true))
assert(listener:bind("127.0.0.1:0"))          -- port 0: any free port
assert(listener:listen())
local address = assert(listener:getsockname())
print("echo server on " .. address)

-- Echo one connection until the peer closes it.
local function echo(conn)
  local bytes = 0
  while true do
    local data = conn:read(4096)
    if not data then break end                  -- nil: end of stream (or error)
    assert(conn:write(data))                    -- blocking: writes all of it, waiting as it must
    bytes = bytes + #data
  end
  conn:close()
  return bytes
end

local served = 0
local server = sched.spawn(function()
  while true do
    local conn, err = listener:accept()
    if conn then
      served = served + 1
      sched.spawn(echo, conn)
    elseif err == "xpio: socket is closed" then
      break                                     -- the listener was closed
    else
      -- out of descriptors (EMFILE), say: the connection stays queued, and
      -- retrying at once would spin (the failed accept does not yield)
      sched.sleep(0.05)
    end
  end
end)

-- One client: send LINES lines, read each one back.
local function client(id)
  local sock = assert(xpio.socket("TCP"))
  assert(sock:connect(address))
  for n = 1, LINES do
    local line = ("client %d line %d\n"):format(id, n)
    assert(sock:write(line) == #line)
    local got = ""
    while #got < #line do got = got .. assert(sock:read(#line - #got)) end
    assert(got == line, "echo mismatch")
  end
  sock:close()
  return id
end

sched.spawn(function()
  local clients = {}
  for id = 1, CLIENTS do clients[id] = sched.spawn(client, id) end
  for _, task in ipairs(clients) do
    print(("client %d done"):format(sched.join(task)))
  end
  listener:close()                              -- stops the accept loop
  sched.join(server)
end)

sched.run()
print(("echo: %d clients served, %d lines each"):format(served, LINES))
