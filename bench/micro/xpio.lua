-- The micro-benchmark's timed loops for XPIO (bench/micro.lua runs them).
--
-- `cases(clock)` returns one function per call measured; each takes the
-- number of calls to time and returns the seconds they took and how many
-- timed segments that is (the driver takes the clock's own cost off each
-- segment). Only the calls measured run between two clock reads: filling,
-- draining and checking happen outside. bench/micro/floor.lua is the same
-- file for the floor: keep the two in step.
local xpio = require "xpio"
local bench = require "bench"

local M = {}

local BIG = string.rep("x", bench.CHUNK)

-- Untimed helpers: fill `s` until it takes no more, read `s` to empty.
local function fill(s)
  local filled = 0
  while true do
    local sent = s:try_write(BIG)
    if not sent then return filled end
    filled = filled + sent
  end
end

local function drain(s)
  local got = 0
  while true do
    local data, err = s:try_read(bench.CHUNK)
    if not data then
      assert(err == "retry", err)
      return got
    end
    got = got + #data
  end
end

-- `count` socket pairs, each with a byte waiting in its second end, and a
-- task per pair on queue `q`.
local function readable_pairs(q, count)
  local ends, tasks = {}, {}
  for i = 1, count do
    local a, b = assert(xpio.socketpair())
    assert(a:try_write("x") == 1)
    ends[i], tasks[i] = { a, b }, { _queue = q }
  end
  return ends, tasks
end

-- Closes every end of `pairs` (arrays of sockets).
local function close_pairs(pairs)
  for _, ends in ipairs(pairs) do
    for _, s in ipairs(ends) do assert(s:close()) end
  end
end

function M.cases(clock)
  local cases = {}

  function cases.read_eagain(n)
    local a, b = assert(xpio.socketpair())
    local data, err
    local t0 = clock()
    for _ = 1, n do data, err = b:try_read(1) end
    local dt = clock() - t0
    bench.check(data == nil and err == "retry", "try_read did not answer retry")
    close_pairs({ { a, b } })
    return dt, 1
  end

  function cases.read_byte(n)
    local a, b = assert(xpio.socketpair())
    local dt, done, segments = 0, 0, 0
    while done < n do
      local filled = fill(a)
      local m = math.min(filled, n - done)
      local t0 = clock()
      for _ = 1, m do b:try_read(1) end
      dt = dt + (clock() - t0)
      bench.check(drain(b) == filled - m, "a 1-byte read got no byte")
      done, segments = done + m, segments + 1
    end
    close_pairs({ { a, b } })
    return dt, segments
  end

  function cases.write_byte(n)
    local a, b = assert(xpio.socketpair())
    local room = 0
    while a:try_write("x") do room = room + 1 end
    drain(b)
    local batch = math.max(1, room // 2)
    local dt, done, segments = 0, 0, 0
    while done < n do
      local m = math.min(batch, n - done)
      local t0 = clock()
      for _ = 1, m do a:try_write("x") end
      dt = dt + (clock() - t0)
      bench.check(drain(b) == m, "a 1-byte write sent no byte")
      done, segments = done + m, segments + 1
    end
    close_pairs({ { a, b } })
    return dt, segments
  end

  -- when_read on 64 readable pairs, timed; the wait that takes the tasks back is not.
  function cases.when_read(n)
    local q = xpio.tqueue()
    local ends, tasks = readable_pairs(q, 64)
    local dt, done, segments = 0, 0, 0
    while done < n do
      local m = math.min(64, n - done)
      local t0 = clock()
      for i = 1, m do ends[i][2]:when_read(tasks[i]) end
      dt = dt + (clock() - t0)
      bench.check(#assert(q:wait(0)) == m, "when_read: tasks lost")
      done, segments = done + m, segments + 1
    end
    q:close()
    close_pairs(ends)
    return dt, segments
  end

  -- wait(0) returning `width` ready tasks, timed; the when_read calls before it are not.
  local function wait_ready(n, width)
    local q = xpio.tqueue()
    local ends, tasks = readable_pairs(q, width)
    local dt, ready = 0, nil
    for _ = 1, n do
      for i = 1, width do ends[i][2]:when_read(tasks[i]) end
      local t0 = clock()
      ready = q:wait(0)
      dt = dt + (clock() - t0)
    end
    bench.check(#ready == width, "wait returned %d of %d tasks", #ready, width)
    q:close()
    close_pairs(ends)
    return dt, n
  end

  function cases.wait1(n) return wait_ready(n, 1) end
  function cases.wait64(n) return wait_ready(n, 64) end

  -- One block-and-wake: when_read then wait(0) returning the task.
  function cases.cycle(n)
    local q = xpio.tqueue()
    local ends, tasks = readable_pairs(q, 1)
    local s, task, ready = ends[1][2], tasks[1], nil
    local t0 = clock()
    for _ = 1, n do
      s:when_read(task)
      ready = q:wait(0)
    end
    local dt = clock() - t0
    bench.check(ready[1] == task, "the task did not come back")
    q:close()
    close_pairs(ends)
    return dt, 1
  end

  return cases
end

return M
