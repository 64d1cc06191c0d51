-- bulk MIB: MIB MiB over TCP loopback with 64 KiB writes (a few in flight,
-- each callback queueing the next) and read_start. Prints MiB/s.
local uv = require "luv"
local bench = require "bench"

local mib = bench.int(1, 64)
local total = mib * 1024 * 1024
local chunks = total // bench.CHUNK
local chunk = string.rep("x", bench.CHUNK)
local received, t0, t1 = 0, nil, nil

local watchdog = uv.new_timer()
watchdog:start(600 * 1000, 0, function() error("timed out after " .. received .. " bytes") end)
watchdog:unref()

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
assert(server:listen(128, function(err)
  assert(not err, err)
  local conn = uv.new_tcp()
  assert(server:accept(conn))
  assert(conn:read_start(function(e, data)
    assert(not e, e)
    if data then
      received = received + #data
    else
      t1 = uv.hrtime()
      conn:close()
      server:close()
    end
  end))
end))

local client = uv.new_tcp()
local queued, written = 0, 0
local function on_written(err)
  assert(not err, err)
  written = written + 1
  if queued < chunks then
    queued = queued + 1
    client:write(chunk, on_written)
  elseif written == chunks then
    client:shutdown(function() client:close() end)
  end
end

assert(client:connect("127.0.0.1", server:getsockname().port, function(err)
  assert(not err, err)
  t0 = uv.hrtime()
  for _ = 1, math.min(4, chunks) do
    queued = queued + 1
    client:write(chunk, on_written)
  end
end))

uv.run()
bench.check(received == total and t1, "received %d of %d bytes", received, total)
bench.result(mib / ((t1 - t0) / 1e9))
