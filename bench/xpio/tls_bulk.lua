-- tls_bulk MIB [DIR]: MIB MiB over TLS 1.3 on TCP loopback with xpio.tls,
-- 64 KiB writes and reads, both ends driven through XPIO's task queue as in
-- bulk.lua. The client verifies the server's chain against DIR/ca.pem and
-- its name ("localhost"); it writes, then sends close_notify; the server
-- reads to the clean end. Timing starts after the handshake. Prints MiB/s.
local xpio = require "xpio"
local tls = require "xpio.tls"
local bench = require "bench"

local mib = bench.int(1, 64)
local dir = bench.tlsdir(2)
local total = mib * 1024 * 1024
local q = xpio.tqueue()

local function await(obj, when)
  local task = { _queue = q }
  assert(obj[when](obj, task))
  local ready = assert(q:wait(bench.TIMEOUT))
  bench.check(ready[1] == task, "timed out waiting to %s", when)
end

local cctx = assert(tls.client({ ca = dir .. "/ca.pem", min_version = "1.3" }))
local sctx = assert(tls.server({ cert = dir .. "/cert.pem", key = dir .. "/key.pem", min_version = "1.3" }))

local server = assert(xpio.socket("TCP"))
assert(server:bind("127.0.0.1:0"))
assert(server:listen())
local address = assert(server:getsockname())
local cli = assert(xpio.socket("TCP"))
local ok, err = cli:try_connect(address)
assert(ok or err == "retry", err)
local srv = server:try_accept()
while not srv do await(server, "when_read"); srv = server:try_accept() end
while not cli:try_connect(address) do await(cli, "when_write") end
assert(tls.wrap(cli, cctx, { host = "localhost" }))
assert(tls.wrap(srv, sctx))

-- Both handshakes, each end tried once and again when its task is ready.
local handshaking = 0
local function shaker(sock)
  local task = { _queue = q }
  function task.run()
    local done, e = sock:try_handshake()
    if done then handshaking = handshaking - 1; return end
    assert(e == "retry", e)
    assert(sock:when_handshake(task))
  end
  handshaking = handshaking + 1
  return task
end
local shakers = { shaker(cli), shaker(srv) }
for _, task in ipairs(shakers) do task.run() end
while handshaking > 0 do
  local ready = assert(q:wait(bench.TIMEOUT))
  bench.check(#ready > 0, "timed out in the handshake")
  for _, task in ipairs(ready) do task.run() end
end
local info = cli:tlsinfo()
bench.check(info.version == "TLSv1.3" and info.verified == true, "client: %s, verified %s",
  tostring(info.version), tostring(info.verified))
bench.check(srv:tlsinfo().version == "TLSv1.3", "server: not TLS 1.3")

local chunk = string.rep("x", bench.CHUNK)
local pending, left = chunk, total
local received, finished = 0, false
local writer, reader = { _queue = q }, { _queue = q }

function writer.run()
  while left > 0 do
    local sent, e = cli:try_write(pending)
    if not sent then
      assert(e == "retry", e)
      return assert(cli:when_write(writer))
    end
    left = left - sent
    pending = sent < #pending and pending:sub(sent + 1) or chunk
  end
  local done, e = cli:try_tls_shutdown()
  if not done then
    assert(e == "retry", e)
    return assert(cli:when_tls_shutdown(writer))
  end
end

function reader.run()
  while true do
    local data, e = srv:try_read(bench.CHUNK)
    if data then
      received = received + #data
    elseif e == "retry" then
      return assert(srv:when_read(reader))
    else
      assert(e == nil, e)
      finished = true
      return
    end
  end
end

local t0 = xpio.gettime()
writer.run()
reader.run()
while not finished do
  local ready = assert(q:wait(bench.TIMEOUT))
  bench.check(#ready > 0, "timed out after %d bytes", received)
  for _, task in ipairs(ready) do task.run() end
end
local dt = xpio.gettime() - t0
bench.check(received == total, "received %d of %d bytes", received, total)
bench.result(mib / dt)
