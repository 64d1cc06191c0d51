-- pingpong N [K]: N one-byte round trips over TCP loopback between two
-- cqueues coroutines, with K idle descriptors each read by a coroutine.
-- Prints round trips/s.
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local bench = require "bench"

local n, idle = bench.int(1, 10000), bench.int(2, 0)
local cq = cqueues.new()
local rate, echoed = nil, 0

for _ = 1, idle // 2 do
  for _, s in ipairs({ socket.pair() }) do
    cq:wrap(function()
      s:read(1)
      error("an idle descriptor became readable")
    end)
  end
end
assert(cq:step(0)) -- setup: every idle coroutine now waits on its socket
bench.check(cq:count() == idle // 2 * 2, "%d idle coroutines waiting", cq:count())

local server = socket.listen({ host = "127.0.0.1", port = 0 })
local _, host, port = server:localname()

cq:wrap(function()
  local conn = assert(server:accept({ nodelay = true }, bench.TIMEOUT))
  conn:setmode("bn", "bn")
  while true do
    local data, err = conn:read(1)
    if not data then assert(err == nil, err) break end
    assert(conn:write(data))
    echoed = echoed + 1
  end
  conn:close()
end)

cq:wrap(function()
  local client = socket.connect({ host = host, port = port, nodelay = true })
  assert(client:connect(bench.TIMEOUT))
  client:setmode("bn", "bn")
  local t0 = cqueues.monotime()
  for i = 1, n do
    assert(client:write("x"))
    local reply = client:read(1)
    bench.check(reply == "x", "round trip %d got %q", i, tostring(reply))
  end
  rate = n / (cqueues.monotime() - t0)
  client:close()
end)

local deadline = cqueues.monotime() + 600
while not (rate and echoed == n) do
  assert(cq:step(bench.TIMEOUT))
  bench.check(cqueues.monotime() < deadline, "timed out")
end
bench.result(rate)
