-- The shell pipeline `seq 1 100000 | grep 7 | wc -l`, built by hand from
-- xpio.pipe and xpio.spawn, with the parent reading the count from the last
-- pipe.
--
--   LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/pipeline.lua
local xpio = require "xpio"
local sched = require "xpio.sched"

local N = 100000

sched.spawn(function()
  local a_r, a_w = assert(xpio.pipe())   -- seq  -> grep
  local b_r, b_w = assert(xpio.pipe())   -- grep -> wc
  local c_r, c_w = assert(xpio.pipe())   -- wc   -> us

  -- Each child gets exactly the descriptors named (stderr is shared with us).
  -- spawn closes the pipe ends it hands over, so the parent keeps only c_r:
  -- each pipe then ends as soon as the process writing it exits.
  local procs = {
    assert(xpio.spawn({ "seq", "1", tostring(N) }, xpio.env, { [1] = a_w, [2] = 2 })),
    assert(xpio.spawn({ "grep", "7" }, xpio.env, { [0] = a_r, [1] = b_w, [2] = 2 })),
    assert(xpio.spawn({ "wc", "-l" }, xpio.env, { [0] = b_r, [1] = c_w, [2] = 2 })),
  }

  -- Read wc's output to the end of the stream.
  local out = {}
  for chunk in function() return c_r:read(4096) end do out[#out + 1] = chunk end
  c_r:close()

  for i, proc in ipairs(procs) do
    local how, code = proc:wait()
    assert(how == "exit" and code == 0, ("stage %d ended with %s %s"):format(i, how, code))
  end

  -- The same count, computed in Lua.
  local expected = 0
  for i = 1, N do
    if tostring(i):find("7", 1, true) then expected = expected + 1 end
  end

  local count = assert(tonumber(table.concat(out)), "wc printed no number")
  print(("pipeline: %d of 1..%d contain a 7 (expected %d)"):format(count, N, expected))
  assert(count == expected, "wrong count")
end)

sched.run()
