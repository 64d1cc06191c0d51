-- A TLS echo server: every connection is served by a task of its own, its
-- handshake bounded by sched.timeout so that a silent or slow client costs
-- one task and nothing else. SIGTERM stops accepting, lets the connections
-- being served finish, and ends the program with exit 0.
--
--   lua5.4 examples/tls_echo.lua cert.pem key.pem [port]
--
-- It prints "tls_echo: listening on 127.0.0.1:PORT" first (port 0, the
-- default, lets the kernel pick one). Try it with
--   openssl s_client -connect 127.0.0.1:PORT -quiet
--
--   LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/tls_echo.lua cert.pem key.pem 8443
local xpio = require "xpio"
local tls = require "xpio.tls"
local sched = require "xpio.sched"

local HANDSHAKE_TIMEOUT = 10   -- seconds a client has to complete its handshake
local IDLE_TIMEOUT = 60        -- seconds a connection may stay silent

local cert, key, port = arg[1], arg[2], arg[3] or "0"
if not (cert and key) or not port:match("^%d+$") then
  io.stderr:write("usage: lua5.4 examples/tls_echo.lua cert.pem key.pem [port]\n")
  os.exit(2)
end
io.stdout:setvbuf("line")

local ctx = assert(tls.server({ cert = cert, key = key }))
local listener = assert(xpio.socket("TCP"))
assert(listener:setsockopt("SO_REUSEADDR", true))
assert(listener:bind("127.0.0.1:" .. port))
assert(listener:listen())
-- Watch SIGTERM before saying we listen: whoever starts us may send it as
-- soon as it reads that line.
local term = assert(xpio.signal("TERM"))
print("tls_echo: listening on " .. assert(listener:getsockname()))

local served = 0

-- Serves one connection: handshake, then echo until the client's
-- close_notify (or an error, or IDLE_TIMEOUT seconds of silence).
local function serve(conn, peer)
  local c <close> = conn
  assert(tls.wrap(c, ctx))
  local ok, err = sched.timeout(HANDSHAKE_TIMEOUT, c.handshake, c)
  if not ok then
    print(("tls_echo: %s: handshake failed: %s"):format(peer, err))
    return
  end
  local bytes = 0
  while true do
    local data, rerr = sched.timeout(IDLE_TIMEOUT, c.read, c, 65536)
    if not data then
      if rerr then print(("tls_echo: %s: %s"):format(peer, rerr)) end
      break
    end
    local n, werr = c:write(data)   -- a blocking write writes all of it
    if not n then
      print(("tls_echo: %s: %s"):format(peer, werr))
      break
    end
    bytes = bytes + #data
  end
  -- our close_notify, flushed (bounded); <close> then closes the socket
  sched.timeout(5, c.tls_shutdown, c)
  print(("tls_echo: %s: %s, %d bytes echoed"):format(peer, c:tlsinfo().version, bytes))
end

sched.spawn(function()
  while true do
    local conn, err = listener:accept()
    if conn then
      served = served + 1
      sched.spawn(serve, conn, conn:getpeername() or "?")
    elseif err == "xpio: socket is closed" then
      break                       -- SIGTERM closed the listener
    else
      sched.sleep(0.05)           -- out of descriptors, say: the client stays queued
    end
  end
end)

sched.spawn(function()
  term:wait()
  term:close()
  print("tls_echo: TERM: no more connections")
  listener:close()
end)

sched.run()
print(("tls_echo: %d connections served"):format(served))
