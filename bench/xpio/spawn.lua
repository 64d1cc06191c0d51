-- spawn N [pipes]: spawn /bin/true and wait for it (try_wait / when_wait),
-- N times; with `pipes` the child's stdin and stdout are pipes and stdout
-- is read to its end. Prints spawns/s.
local xpio = require "xpio"
local bench = require "bench"

local n, pipes = bench.int(1, 100), arg[2] == "pipes"
local q = xpio.tqueue()
local task = { _queue = q }

local function await(obj, when)
  assert(obj[when](obj, task))
  local ready = assert(q:wait(bench.TIMEOUT))
  bench.check(ready[1] == task, "timed out waiting to %s", when)
end

local args, env = { "/bin/true" }, xpio.env
local ok = 0
local t0 = xpio.gettime()
for _ = 1, n do
  local proc
  if pipes then
    local in_r, in_w = assert(xpio.pipe())
    local out_r, out_w = assert(xpio.pipe())
    proc = assert(xpio.spawn(args, env, { [0] = in_r, [1] = out_w, [2] = 2 }))
    assert(in_w:close())
    local data, err = out_r:try_read(64)
    while err == "retry" do
      await(out_r, "when_read")
      data, err = out_r:try_read(64)
    end
    bench.check(data == nil and err == nil, "expected end of stream, got %s %s", tostring(data), tostring(err))
    assert(out_r:close())
  else
    proc = assert(xpio.spawn(args, env, { [0] = 0, [1] = 1, [2] = 2 }))
  end
  local how, code = proc:try_wait()
  while how == nil and code == "retry" do
    await(proc, "when_wait")
    how, code = proc:try_wait()
  end
  if how == "exit" and code == 0 then ok = ok + 1 end
end
local dt = xpio.gettime() - t0
bench.check(ok == n, "%d of %d children exited with 0", ok, n)
bench.result(n / dt)
