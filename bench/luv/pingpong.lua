-- pingpong N [K]: N one-byte round trips over TCP loopback with luv
-- callbacks (read_start / write), with K idle descriptors also reading.
-- Prints round trips/s.
local uv = require "luv"
local bench = require "bench"

local n, idle = bench.int(1, 10000), bench.int(2, 0)
local count, t0, t1 = 0, nil, nil

local watchdog = uv.new_timer()
watchdog:start(600 * 1000, 0, function() error("timed out after " .. count .. " round trips") end)
watchdog:unref()

for _ = 1, idle // 2 do
  for _, fd in ipairs(assert(uv.socketpair())) do
    local pipe = uv.new_pipe(false)
    assert(pipe:open(fd))
    assert(pipe:read_start(function() error("an idle descriptor became readable") end))
  end
end

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
assert(server:listen(128, function(err)
  assert(not err, err)
  local conn = uv.new_tcp()
  assert(server:accept(conn))
  assert(conn:nodelay(true))
  assert(conn:read_start(function(e, data)
    assert(not e, e)
    if data then conn:write(data) end
  end))
end))

local client = uv.new_tcp()
assert(client:connect("127.0.0.1", server:getsockname().port, function(err)
  assert(not err, err)
  assert(client:nodelay(true))
  assert(client:read_start(function(e, data)
    assert(not e, e)
    bench.check(data == "x", "got %q", tostring(data))
    count = count + 1
    if count < n then
      client:write("x")
    else
      t1 = uv.hrtime()
      uv.stop()
    end
  end))
  t0 = uv.hrtime()
  client:write("x")
end))

uv.run()
bench.check(count == n and t1, "%d of %d round trips", count, n)
bench.result(n / ((t1 - t0) / 1e9))
