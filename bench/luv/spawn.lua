-- spawn N [pipes]: uv.spawn /bin/true and wait for its exit callback, N
-- times; with `pipes` the child's stdin and stdout are uv pipes and stdout
-- is read to its end. Prints spawns/s.
local uv = require "luv"
local bench = require "bench"

local n, pipes = bench.int(1, 100), arg[2] == "pipes"
local ok, started, t1 = 0, 0, nil

local watchdog = uv.new_timer()
watchdog:start(600 * 1000, 0, function() error("timed out after " .. ok .. " children") end)
watchdog:unref()

local function one()
  started = started + 1
  local stdio, stdin, stdout = { 0, 1, 2 }, nil, nil
  if pipes then
    stdin, stdout = uv.new_pipe(false), uv.new_pipe(false)
    stdio = { stdin, stdout, 2 }
  end
  local waiting = pipes and 2 or 1
  local function part_done()
    waiting = waiting - 1
    if waiting > 0 then return end
    if started < n then one() else t1 = uv.hrtime() end
  end
  local handle
  handle = assert(uv.spawn("/bin/true", { args = {}, stdio = stdio }, function(code, signal)
    if code == 0 and signal == 0 then ok = ok + 1 end
    handle:close()
    part_done()
  end))
  if pipes then
    stdin:close()
    assert(stdout:read_start(function(err, data)
      assert(not err, err)
      bench.check(data == nil, "unexpected output %q", tostring(data))
      stdout:close()
      part_done()
    end))
  end
end

local t0 = uv.hrtime()
one()
uv.run()
bench.check(ok == n and t1, "%d of %d children exited with 0", ok, n)
bench.result(n / ((t1 - t0) / 1e9))
