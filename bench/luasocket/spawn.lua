-- spawn N [pipes]: LuaSocket has no process API; with lua-posix, fork + exec
-- /bin/true and wait, N times (with `pipes`: stdin and stdout are pipes).
-- Prints spawns/s, or `cannot` without lua-posix.
local socket = require "socket"
local posixspawn = require "posixspawn"
local bench = require "bench"

if not posixspawn.available then bench.cannot(posixspawn.reason) end
local n, pipes = bench.int(1, 100), arg[2] == "pipes"
local ok = 0
local t0 = socket.gettime()
for _ = 1, n do
  if posixspawn.run_true(pipes) then ok = ok + 1 end
end
local dt = socket.gettime() - t0
bench.check(ok == n, "%d of %d children exited with 0", ok, n)
bench.result(n / dt)
