-- memory N: RSS growth per idle connected TCP pair (LuaSocket has no
-- socketpair; select keeps no registrations, so the pair is all there is).
-- Prints bytes per pair.
local socket = require "socket"
local bench = require "bench"

local n = bench.int(1, 1000)
local server = assert(socket.bind("127.0.0.1", 0, n))
local _, port = server:getsockname()
local held = {}

bench.gc()
local before = bench.rss()
for i = 1, n do
  local c = assert(socket.connect("127.0.0.1", port))
  local a = assert(server:accept())
  c:settimeout(0)
  a:settimeout(0)
  held[i] = { c, a }
end
bench.gc()
local after = bench.rss()
bench.check(#held == n and held[n][2]:getpeername(), "%d of %d pairs", #held, n)
bench.result((after - before) / n)
