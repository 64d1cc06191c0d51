-- accept N: connect, accept and close N TCP loopback connections one after
-- another with non-blocking sockets and socket.select. Prints conn/s.
local socket = require "socket"
local bench = require "bench"

local n = bench.int(1, 1000)
local server = assert(socket.bind("127.0.0.1", 0))
local host, port = server:getsockname()
server:settimeout(0)

local accepted, connected = 0, 0
local t0 = socket.gettime()
for _ = 1, n do
  local client = assert(socket.tcp())
  client:settimeout(0)
  local ok, err = client:connect(host, port)
  assert(ok or err == "timeout", err)
  local conn, e = server:accept()
  while not conn do
    assert(e == "timeout", e)
    bench.check(#socket.select({ server }, nil, bench.TIMEOUT) == 1, "timed out waiting to accept")
    conn, e = server:accept()
  end
  accepted = accepted + 1
  if not ok then
    local _, writable = socket.select(nil, { client }, bench.TIMEOUT)
    bench.check(#writable == 1, "timed out waiting to connect")
  end
  if client:getpeername() then connected = connected + 1 end
  conn:close()
  client:close()
end
local dt = socket.gettime() - t0
bench.check(accepted == n and connected == n, "accepted %d, connected %d of %d", accepted, connected, n)
bench.result(n / dt)
