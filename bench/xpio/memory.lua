-- memory N: RSS growth per idle connected socket pair (xpio.socketpair, both
-- ends waiting for read on a task queue). Prints bytes per pair.
local xpio = require "xpio"
local bench = require "bench"

local n = bench.int(1, 1000)
local q = xpio.tqueue()
local held = {}

bench.gc()
local before = bench.rss()
for i = 1, n do
  local a, b = assert(xpio.socketpair())
  local ta, tb = { _queue = q }, { _queue = q }
  assert(a:when_read(ta))
  assert(b:when_read(tb))
  held[i] = { a, b, ta, tb }
end
bench.gc()
local after = bench.rss()
local ready = assert(q:wait(0))
bench.check(#ready == 0 and not q:isEmpty(), "the pairs are not idle")
bench.check(#held == n, "%d of %d pairs", #held, n)
bench.result((after - before) / n)
