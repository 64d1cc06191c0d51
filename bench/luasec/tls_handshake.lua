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
local luasec = require "luasec"

local n = bench.int(1, 100)
local dir = bench.tlsdir(2)

local cctx, sctx = luasec.contexts(dir)

local server = assert(socket.bind("127.0.0.1", 0))
local host, port = server:getsockname()
server:settimeout(0)


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
  luasec.handshake(cli, srv) -- the client's first flight waits for the connect, as TLS asks
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
