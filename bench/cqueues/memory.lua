-- memory N: RSS growth per idle connected socket pair (cqueues socket.pair,
-- each end read by a coroutine waiting in the controller). Prints bytes
-- per pair.
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local bench = require "bench"

local n = bench.int(1, 1000)
local loop = cqueues.new()
local held = {}
local function reader(s)
  return function()
    s:read(1)
    error("an idle descriptor became readable")
  end
end

bench.gc()
local before = bench.rss()
for i = 1, n do
  local a, b = socket.pair()
  loop:wrap(reader(a))
  loop:wrap(reader(b))
  held[i] = { a, b }
end
assert(loop:step(0)) -- each coroutine starts and waits for its socket
bench.gc()
local after = bench.rss()
bench.check(#held == n and loop:count() == 2 * n, "%d coroutines waiting, expected %d", loop:count(), 2 * n)
bench.result((after - before) / n)
