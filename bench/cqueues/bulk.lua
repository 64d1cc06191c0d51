-- bulk MIB: MIB MiB over TCP loopback with 64 KiB writes and reads between
-- two cqueues coroutines. Prints MiB/s.
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local bench = require "bench"

local mib = bench.int(1, 64)
local total = mib * 1024 * 1024
local chunk = string.rep("x", bench.CHUNK)
local received, t0, t1 = 0, nil, nil

local server = socket.listen({ host = "127.0.0.1", port = 0 })
local _, host, port = server:localname()

local loop = cqueues.new()

loop:wrap(function()
  local conn = assert(server:accept(bench.TIMEOUT))
  conn:setmode("bn", "bn")
  local want = "-" .. bench.CHUNK -- up to 64 KiB per read
  while true do
    local data, err = conn:read(want)
    if not data then assert(err == nil, err) break end
    received = received + #data
  end
  t1 = cqueues.monotime()
  conn:close()
end)

loop:wrap(function()
  local client = socket.connect({ host = host, port = port })
  assert(client:connect(bench.TIMEOUT))
  client:setmode("bn", "bn")
  t0 = cqueues.monotime()
  for _ = 1, total // bench.CHUNK do assert(client:write(chunk)) end
  assert(client:shutdown("w"))
end)

local deadline = cqueues.monotime() + 600
while not t1 do
  assert(loop:step(bench.TIMEOUT))
  bench.check(cqueues.monotime() < deadline, "timed out")
end
bench.check(received == total, "received %d of %d bytes", received, total)
bench.result(mib / (t1 - t0))
