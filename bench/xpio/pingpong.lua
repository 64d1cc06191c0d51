-- pingpong N [K]: N one-byte round trips over TCP loopback, driven through
-- XPIO's task queue (try_read / when_read / tqueue:wait), with K idle
-- descriptors also registered for read. Prints round trips/s.
local xpio = require "xpio"
local bench = require "bench"

local n, idle = bench.int(1, 10000), bench.int(2, 0)
local q = xpio.tqueue()

-- Wait (bounded) for `obj` to be ready, registering with its `when` method.
local function await(obj, when)
  local task = { _queue = q }
  assert(obj[when](obj, task))
  local ready = assert(q:wait(bench.TIMEOUT))
  bench.check(ready[1] == task, "timed out waiting to %s", when)
end

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
assert(cli:setsockopt("TCP_NODELAY", true))
assert(srv:setsockopt("TCP_NODELAY", true))

local idlers = {}
for _ = 1, idle // 2 do
  for _, s in ipairs({ assert(xpio.socketpair()) }) do
    local task = { _queue = q, sock = s }
    assert(s:when_read(task))
    idlers[#idlers + 1] = task
  end
end

local count = 0
local ping, pong = { _queue = q }, { _queue = q }

-- The echo side: read what is there, send it back, then wait for more.
function pong.run()
  while true do
    local data, e = srv:try_read(1)
    if not data then
      assert(e == "retry", e or "unexpected end of stream")
      return assert(srv:when_read(pong))
    end
    assert(srv:try_write(data) == 1)
  end
end

-- The client side: count each reply and send the next byte.
function ping.run()
  while true do
    local data, e = cli:try_read(1)
    if not data then
      assert(e == "retry", e or "unexpected end of stream")
      return assert(cli:when_read(ping))
    end
    bench.check(data == "x", "got %q", data)
    count = count + 1
    if count == n then return end
    assert(cli:try_write("x") == 1)
  end
end

local t0 = xpio.gettime()
assert(cli:try_write("x") == 1)
ping.run()
pong.run()
while count < n do
  local ready = assert(q:wait(bench.TIMEOUT))
  bench.check(#ready > 0, "timed out after %d round trips", count)
  for _, task in ipairs(ready) do
    bench.check(task.run, "an idle descriptor became ready")
    task.run()
  end
end
local dt = xpio.gettime() - t0
bench.check(count == n, "%d of %d round trips", count, n)
bench.check(#idlers == idle // 2 * 2 and not q:isEmpty(), "idle tasks lost")
bench.result(n / dt)
