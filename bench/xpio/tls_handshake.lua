-- tls_handshake N [DIR]: N TLS 1.3 connections over TCP loopback with
-- xpio.tls, one after another, waiting through XPIO's task queue as in
-- accept.lua: connect, accept, wrap, both handshakes (the client verifying
-- the server's chain against DIR/ca.pem and its name, "localhost", also
-- sent as SNI), close (close_notify, not awaited). No session is offered,
-- so every handshake is a full one. Prints handshakes/s.
local xpio = require "xpio"
local tls = require "xpio.tls"
local bench = require "bench"

local n = bench.int(1, 100)
local dir = bench.tlsdir(2)
local q = xpio.tqueue()
local task = { _queue = q }

local function await(obj, when)
  assert(obj[when](obj, task))
  local ready = assert(q:wait(bench.TIMEOUT))
  bench.check(ready[1] == task, "timed out waiting to %s", when)
end

local cctx = assert(tls.client({ ca = dir .. "/ca.pem", min_version = "1.3" }))
local sctx = assert(tls.server({ cert = dir .. "/cert.pem", key = dir .. "/key.pem", min_version = "1.3" }))
local wrap_options = { host = "localhost" }

local server = assert(xpio.socket("TCP"))
assert(server:bind("127.0.0.1:0"))
assert(server:listen())
local address = assert(server:getsockname())

-- One task per end, made once: `sock` is the socket it drives.
local handshaking = 0
local function run(self)
  local done, e = self.sock:try_handshake()
  if done then handshaking = handshaking - 1; return end
  assert(e == "retry", e)
  assert(self.sock:when_handshake(self))
end
local cend, send = { _queue = q, run = run }, { _queue = q, run = run }

local completed, verified = 0, 0
local t0 = xpio.gettime()
for _ = 1, n do
  local c = assert(xpio.socket("TCP"))
  local ok, err = c:try_connect(address)
  assert(ok or err == "retry", err)
  local a, e = server:try_accept()
  while not a do
    assert(e == "retry", e)
    await(server, "when_read")
    a, e = server:try_accept()
  end
  ok, err = c:try_connect(address)
  while not ok do
    assert(err == "retry", err)
    await(c, "when_write")
    ok, err = c:try_connect(address)
  end
  assert(tls.wrap(c, cctx, wrap_options))
  assert(tls.wrap(a, sctx))
  cend.sock, send.sock, handshaking = c, a, 2
  cend:run()
  send:run()
  while handshaking > 0 do
    local ready = assert(q:wait(bench.TIMEOUT))
    bench.check(#ready > 0, "timed out in the handshake")
    for _, t in ipairs(ready) do t:run() end
  end
  completed = completed + 1
  local info = c:tlsinfo()
  if info.verified == true and info.version == "TLSv1.3" and not info.resumed then verified = verified + 1 end
  assert(a:close())
  assert(c:close())
end
local dt = xpio.gettime() - t0
bench.check(completed == n and verified == n, "completed %d, verified (TLS 1.3, full) %d of %d", completed, verified, n)
bench.result(n / dt)
