-- memory N: RSS growth per idle connected socket pair (uv.socketpair, each
-- end a uv pipe reading). Prints bytes per pair.
local uv = require "luv"
local bench = require "bench"

local n = bench.int(1, 1000)
local held = {}
local function never() error("an idle descriptor became readable") end

uv.run("nowait")
bench.gc()
local before = bench.rss()
for i = 1, n do
  local fds = assert(uv.socketpair())
  local a, b = uv.new_pipe(false), uv.new_pipe(false)
  assert(a:open(fds[1]))
  assert(b:open(fds[2]))
  assert(a:read_start(never))
  assert(b:read_start(never))
  held[i] = { a, b }
end
uv.run("nowait") -- libuv registers the descriptors with epoll here
bench.gc()
local after = bench.rss()
bench.check(#held == n, "%d of %d pairs", #held, n)
bench.result((after - before) / n)
