-- accept N: connect, accept and close N TCP loopback connections one after
-- another, waiting through XPIO's task queue. Prints conn/s.
local xpio = require "xpio"
local bench = require "bench"

local n = bench.int(1, 1000)
local q = xpio.tqueue()
local task = { _queue = q }

local function await(obj, when)
  assert(obj[when](obj, task))
  local ready = assert(q:wait(bench.TIMEOUT))
  bench.check(ready[1] == task, "timed out waiting to %s", when)
end

local server = assert(xpio.socket("TCP"))
assert(server:bind("127.0.0.1:0"))
assert(server:listen())
local address = assert(server:getsockname())

local accepted, connected = 0, 0
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
  accepted = accepted + 1
  ok, err = c:try_connect(address)
  while not ok do
    assert(err == "retry", err)
    await(c, "when_write")
    ok, err = c:try_connect(address)
  end
  connected = connected + 1
  assert(a:close())
  assert(c:close())
end
local dt = xpio.gettime() - t0
bench.check(accepted == n and connected == n, "accepted %d, connected %d of %d", accepted, connected, n)
bench.result(n / dt)
