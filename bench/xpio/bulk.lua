-- bulk MIB: MIB MiB over TCP loopback with 64 KiB writes (try_write(chunk, i)
-- after a partial write, as LuaSocket's send(data, i)) and reads, both
-- ends driven through XPIO's task queue. Prints MiB/s.
local xpio = require "xpio"
local bench = require "bench"

local mib = bench.int(1, 64)
local total = mib * 1024 * 1024
local q = xpio.tqueue()

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

local chunk = string.rep("x", bench.CHUNK)
local at, left = 1, total   -- where the chunk's next write starts: try_write(chunk, at), no re-slicing
local received, finished = 0, false
local writer, reader = { _queue = q }, { _queue = q }

function writer.run()
  while left > 0 do
    local sent, e = cli:try_write(chunk, at, math.min(#chunk, at + left - 1))
    if not sent then
      assert(e == "retry", e)
      return assert(cli:when_write(writer))
    end
    left = left - sent
    at = at + sent
    if at > #chunk then at = 1 end
  end
  assert(cli:shutdown("w"))
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
