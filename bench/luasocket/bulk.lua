-- bulk MIB: MIB MiB over TCP loopback with 64 KiB sends and receives on
-- non-blocking sockets driven by a socket.select loop. Prints MiB/s.
local socket = require "socket"
local bench = require "bench"

local mib = bench.int(1, 64)
local total = mib * 1024 * 1024
local chunk = string.rep("x", bench.CHUNK)
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local cli = assert(socket.connect("127.0.0.1", port))
local srv = assert(server:accept())
cli:settimeout(0)
srv:settimeout(0)

local left, from, received, finished = total, 1, 0, false

local function write()
  while left > 0 do
    local last, err, partial = cli:send(chunk, from)
    last = last or partial
    left = left - (last - from + 1)
    if last < #chunk then
      assert(err == "timeout", err)
      from = last + 1
      return
    end
    from = 1
  end
  assert(cli:shutdown("send"))
end

local function read()
  while true do
    local data, err, partial = srv:receive(bench.CHUNK)
    received = received + #(data or partial)
    if not data then
      if err == "closed" then finished = true else assert(err == "timeout", err) end
      return
    end
  end
end

local t0 = socket.gettime()
while not finished do
  local writers = left > 0 and { cli } or {}
  local readable, writable = socket.select({ srv }, writers, bench.TIMEOUT)
  bench.check(#readable + #writable > 0, "timed out after %d bytes", received)
  if writable[1] then write() end
  if readable[1] then read() end
end
local dt = socket.gettime() - t0
bench.check(received == total, "received %d of %d bytes", received, total)
bench.result(mib / dt)
