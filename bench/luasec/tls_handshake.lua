-- tls_handshake N [DIR]: N TLS 1.3 connections over TCP loopback with
-- LuaSec, one after another, both ends in this process on non-blocking
-- sockets and socket.select: connect, accept, wrap, both handshakes (the
-- client verifying the server's chain against DIR/ca.pem, sending SNI;
-- LuaSec checks no host name), close. LuaSec keeps no session cache, so
-- every handshake is a full one. Prints handshakes/s.
local socket = require "socket"
local ok, ssl = pcall(require, "ssl")
local bench = require "bench"
if not ok then bench.cannot("LuaSec (lua-sec) does not load") end

local n = bench.int(1, 100)
local dir = bench.tlsdir(2)

local cctx = assert(ssl.newcontext({ mode = "client", protocol = "tlsv1_3", verify = "peer",
  cafile = dir .. "/ca.pem" }))
local sctx = assert(ssl.newcontext({ mode = "server", protocol = "tlsv1_3",
  certificate = dir .. "/cert.pem", key = dir .. "/key.pem" }))

local server = assert(socket.bind("127.0.0.1", 0))
local host, port = server:getsockname()
server:settimeout(0)

-- What a LuaSec error waits for: "wantread" readable, "wantwrite" writable,
-- "timeout" (LuaSocket's own word) the operation's natural direction.
local function want(err, natural)
  if err == "wantwrite" then return "w" elseif err == "wantread" then return "r" end
  assert(err == "timeout", err)
  return natural or "r"
end

-- Both handshakes: each end is tried once, then again when its socket is
-- ready as TLS asked.
local function handshake(client, server_end)
  local ends, waits, left = { client, server_end }, {}, 2
  local ready = { [client] = true, [server_end] = true }
  while true do
    for _, conn in ipairs(ends) do
      if ready[conn] and waits[conn] ~= false then
        local done, err = conn:dohandshake()
        if done then waits[conn], left = false, left - 1 else waits[conn] = want(err) end
      end
    end
    if left == 0 then return end
    local r, w = {}, {}
    for _, conn in ipairs(ends) do
      if waits[conn] == "r" then r[#r + 1] = conn elseif waits[conn] == "w" then w[#w + 1] = conn end
    end
    local readable, writable = socket.select(r, w, bench.TIMEOUT)
    bench.check(#readable + #writable > 0, "timed out in the handshake")
    ready = {}
    for _, conn in ipairs(readable) do ready[conn] = true end
    for _, conn in ipairs(writable) do ready[conn] = true end
  end
end

local completed, verified = 0, 0
local t0 = socket.gettime()
for _ = 1, n do
  local tcp = assert(socket.tcp())
  tcp:settimeout(0)
  local done, err = tcp:connect(host, port)
  assert(done or err == "timeout", err)
  local conn, e = server:accept()
  while not conn do
    assert(e == "timeout", e)
    bench.check(#socket.select({ server }, nil, bench.TIMEOUT) == 1, "timed out waiting to accept")
    conn, e = server:accept()
  end
  local cli = assert(ssl.wrap(tcp, cctx))
  local srv = assert(ssl.wrap(conn, sctx))
  cli:sni("localhost")
  cli:settimeout(0)
  srv:settimeout(0)
  handshake(cli, srv) -- the client's first flight waits for the connect, as TLS asks
  completed = completed + 1
  if cli:getpeerverification() == true and cli:info("protocol") == "TLSv1.3" then
    verified = verified + 1
  end
  cli:close()
  srv:close()
end
local dt = socket.gettime() - t0
bench.check(completed == n and verified == n, "completed %d, verified (TLS 1.3) %d of %d", completed, verified, n)
bench.result(n / dt)
