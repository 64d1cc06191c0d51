-- accept N: connect, accept and close N TCP loopback connections one after
-- another with luv callbacks. Prints conn/s.
local uv = require "luv"
local bench = require "bench"

local n = bench.int(1, 1000)
local accepted, connected, t1 = 0, 0, nil

local watchdog = uv.new_timer()
watchdog:start(600 * 1000, 0, function() error("timed out after " .. accepted .. " connections") end)
watchdog:unref()

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
local port = server:getsockname().port
local next_connection

-- The next connection starts when both ends of this one are done.
local function one_end_done()
  if accepted == connected then
    if accepted < n then
      next_connection()
    else
      t1 = uv.hrtime()
      server:close()
    end
  end
end

assert(server:listen(128, function(err)
  assert(not err, err)
  local conn = uv.new_tcp()
  assert(server:accept(conn))
  accepted = accepted + 1
  conn:close()
  one_end_done()
end))

function next_connection()
  local client = uv.new_tcp()
  assert(client:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    connected = connected + 1
    client:close()
    one_end_done()
  end))
end

local t0 = uv.hrtime()
next_connection()
uv.run()
bench.check(accepted == n and connected == n and t1, "accepted %d, connected %d of %d", accepted, connected, n)
bench.result(n / ((t1 - t0) / 1e9))
