-- pingpong_sched N: N one-byte round trips over TCP loopback through the
-- blocking functions (connect, accept, read, write) under xpio.sched.
-- Prints round trips/s.
local xpio = require "xpio"
local sched = require "xpio.sched"
local bench = require "bench"

local n = bench.int(1, 10000)
local server = assert(xpio.socket("TCP"))
assert(server:bind("127.0.0.1:0"))
assert(server:listen())
local address = assert(server:getsockname())
local echoed, rate = 0, nil

sched.spawn(function()
  local conn = assert(server:accept())
  assert(conn:setsockopt("TCP_NODELAY", true))
  while true do
    local data, err = conn:read(1)
    if not data then assert(err == nil, err) break end
    assert(conn:write(data) == 1)
    echoed = echoed + 1
  end
  conn:close()
end)

sched.spawn(function()
  local client = assert(xpio.socket("TCP"))
  assert(client:connect(address))
  assert(client:setsockopt("TCP_NODELAY", true))
  local t0 = xpio.gettime()
  for i = 1, n do
    assert(client:write("x") == 1)
    local reply = client:read(1)
    bench.check(reply == "x", "round trip %d got %q", i, tostring(reply))
  end
  rate = n / (xpio.gettime() - t0)
  client:close()
end)

-- Every wait here is bounded by the harness's timeout on the whole run.
sched.run()
bench.check(echoed == n, "echoed %d of %d", echoed, n)
bench.result(assert(rate))
