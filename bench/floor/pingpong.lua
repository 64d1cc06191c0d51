-- pingpong N [K]: N one-byte round trips over TCP loopback, driven through
-- the Lua floor's queue (try_read / when_read / wait), with K idle
-- descriptors also registered for read. Prints round trips/s.
--
-- The same loop as bench/xpio/pingpong.lua, line for line, on the floor's
-- binding (bench/floor/floor.c): descriptors are integers and the queue is
-- an argument instead of the task's `_queue`.
local floor = require "floor"
local bench = require "bench"

local n, idle = bench.int(1, 10000), bench.int(2, 0)
local q = floor.queue()

-- Wait (bounded) for `fd` to be ready, registering with `when` (a function).
local function await(fd, when)
  local task = {}
  assert(when(q, fd, task))
  local ready = assert(floor.wait(q, bench.TIMEOUT))
  bench.check(ready[1] == task, "timed out waiting for fd %d", fd)
end

local server = assert(floor.tcp_socket())
local port = assert(floor.listen_loopback(server))
local cli = assert(floor.tcp_socket())
local ok, err = floor.try_connect(cli, port)
assert(ok or err == "retry", err)
local srv = floor.try_accept(server)
while not srv do await(server, floor.when_read); srv = floor.try_accept(server) end
while not floor.try_connect(cli, port) do await(cli, floor.when_write) end
assert(floor.nodelay(cli))
assert(floor.nodelay(srv))

local idlers = {}
for _ = 1, idle // 2 do
  for _, fd in ipairs({ assert(floor.socketpair()) }) do
    local task = { fd = fd }
    assert(floor.when_read(q, fd, task))
    idlers[#idlers + 1] = task
  end
end

local count = 0
local ping, pong = {}, {}

-- The echo side: read what is there, send it back, then wait for more.
function pong.run()
  while true do
    local data, e = floor.try_read(srv, 1)
    if not data then
      assert(e == "retry", e or "unexpected end of stream")
      return assert(floor.when_read(q, srv, pong))
    end
    assert(floor.try_write(srv, data) == 1)
  end
end

-- The client side: count each reply and send the next byte.
function ping.run()
  while true do
    local data, e = floor.try_read(cli, 1)
    if not data then
      assert(e == "retry", e or "unexpected end of stream")
      return assert(floor.when_read(q, cli, ping))
    end
    bench.check(data == "x", "got %q", data)
    count = count + 1
    if count == n then return end
    assert(floor.try_write(cli, "x") == 1)
  end
end

local t0 = floor.gettime()
assert(floor.try_write(cli, "x") == 1)
ping.run()
pong.run()
while count < n do
  local ready = assert(floor.wait(q, bench.TIMEOUT))
  bench.check(#ready > 0, "timed out after %d round trips", count)
  for _, task in ipairs(ready) do
    bench.check(task.run, "an idle descriptor became ready")
    task.run()
  end
end
local dt = floor.gettime() - t0
bench.check(count == n, "%d of %d round trips", count, n)
bench.check(#idlers == idle // 2 * 2 and floor.waiting(q) == #idlers + 1, "idle tasks lost")
bench.result(n / dt)
