-- accept N: connect, accept and close N TCP loopback connections one after
-- another in a cqueues coroutine. Prints conn/s.
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local bench = require "bench"

local n = bench.int(1, 1000)
local loop = cqueues.new()
local server = socket.listen({ host = "127.0.0.1", port = 0 })
local _, host, port = server:localname()
local accepted, connected, rate = 0, 0, nil

loop:wrap(function()
  local t0 = cqueues.monotime()
  for _ = 1, n do
    local client = socket.connect({ host = host, port = port })
    assert(client:connect(bench.TIMEOUT))
    connected = connected + 1
    local conn = assert(server:accept(bench.TIMEOUT))
    accepted = accepted + 1
    conn:close()
    client:close()
  end
  rate = n / (cqueues.monotime() - t0)
end)

local deadline = cqueues.monotime() + 600
while not rate do
  assert(loop:step(bench.TIMEOUT))
  bench.check(cqueues.monotime() < deadline, "timed out")
end
bench.check(accepted == n and connected == n, "accepted %d, connected %d of %d", accepted, connected, n)
bench.result(rate)
