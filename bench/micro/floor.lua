-- The micro-benchmark's timed loops for the Lua floor (bench/micro.lua runs
-- them): bench/micro/xpio.lua's loops on bench/floor/floor.c.
--
-- `cases(clock)` returns one function per call measured; each takes the
-- number of calls to time and returns the seconds they took and how many
-- timed segments that is (the driver takes the clock's own cost off each
-- segment). Only the calls measured run between two clock reads: filling,
-- draining and checking happen outside. bench/micro/xpio.lua is the same
-- file for XPIO: keep the two in step.
local floor = require "floor"
local bench = require "bench"

local M = {}

local BIG = string.rep("x", bench.CHUNK)

-- Untimed helpers: fill `s` until it takes no more, read `s` to empty.
local function fill(s)
  local filled = 0
  while true do
    local sent = floor.try_write(s, BIG)
    if not sent then return filled end
    filled = filled + sent
  end
end

local function drain(s)
  local got = 0
  while true do
    local data, err = floor.try_read(s, bench.CHUNK)
    if not data then
      assert(err == "retry", err)
      return got
    end
    got = got + #data
  end
end

-- `count` socket pairs, each with a byte waiting in its second end, and a
-- task per pair on queue `q` (read only in the task-fields mode).
local function readable_pairs(q, count)
  local ends, tasks = {}, {}
  for i = 1, count do
    local a, b = assert(floor.socketpair())
    assert(floor.try_write(a, "x") == 1)
    ends[i], tasks[i] = { a, b }, { _queue = q }
  end
  return ends, tasks
end

-- Closes every end of `pairs` (arrays of descriptors), after their queue is
-- done with them (the floor's queues never forget a descriptor).
local function close_pairs(pairs)
  for _, ends in ipairs(pairs) do
    for _, fd in ipairs(ends) do assert(floor.close(fd)) end
  end
end

-- `fields`: run on the floor's task-fields mode (bench/floor/floor.c).
function M.cases(clock, fields)
  local cases = {}

  function cases.read_eagain(n)
    local a, b = assert(floor.socketpair())
    local data, err
    local t0 = clock()
    for _ = 1, n do data, err = floor.try_read(b, 1) end
    local dt = clock() - t0
    bench.check(data == nil and err == "retry", "try_read did not answer retry")
    close_pairs({ { a, b } })
    return dt, 1
  end

  function cases.read_byte(n)
    local a, b = assert(floor.socketpair())
    local dt, done, segments = 0, 0, 0
    while done < n do
      local filled = fill(a)
      local m = math.min(filled, n - done)
      local t0 = clock()
      for _ = 1, m do floor.try_read(b, 1) end
      dt = dt + (clock() - t0)
      bench.check(drain(b) == filled - m, "a 1-byte read got no byte")
      done, segments = done + m, segments + 1
    end
    close_pairs({ { a, b } })
    return dt, segments
  end

  function cases.write_byte(n)
    local a, b = assert(floor.socketpair())
    local room = 0
    while floor.try_write(a, "x") do room = room + 1 end
    drain(b)
    local batch = math.max(1, room // 2)
    local dt, done, segments = 0, 0, 0
    while done < n do
      local m = math.min(batch, n - done)
      local t0 = clock()
      for _ = 1, m do floor.try_write(a, "x") end
      dt = dt + (clock() - t0)
      bench.check(drain(b) == m, "a 1-byte write sent no byte")
      done, segments = done + m, segments + 1
    end
    close_pairs({ { a, b } })
    return dt, segments
  end

  -- when_read on 64 readable pairs, timed; the wait that takes the tasks back is not.
  function cases.when_read(n)
    local q = floor.queue()
    local ends, tasks = readable_pairs(q, 64)
    local dt, done, segments = 0, 0, 0
    while done < n do
      local m = math.min(64, n - done)
      local t0 = clock()
      for i = 1, m do floor.when_read(q, ends[i][2], tasks[i]) end
      dt = dt + (clock() - t0)
      bench.check(#assert(floor.wait(q, 0)) == m, "when_read: tasks lost")
      done, segments = done + m, segments + 1
    end
    close_pairs(ends)
    return dt, segments
  end

  -- wait(0) returning `width` ready tasks, timed; the when_read calls before it are not.
  local function wait_ready(n, width)
    local q = floor.queue()
    local ends, tasks = readable_pairs(q, width)
    local dt, ready = 0, nil
    for _ = 1, n do
      for i = 1, width do floor.when_read(q, ends[i][2], tasks[i]) end
      local t0 = clock()
      ready = floor.wait(q, 0)
      dt = dt + (clock() - t0)
    end
    bench.check(#ready == width, "wait returned %d of %d tasks", #ready, width)
    close_pairs(ends)
    return dt, n
  end

  function cases.wait1(n) return wait_ready(n, 1) end
  function cases.wait64(n) return wait_ready(n, 64) end

  -- One block-and-wake: when_read then wait(0) returning the task.
  function cases.cycle(n)
    local q = floor.queue()
    local ends, tasks = readable_pairs(q, 1)
    local s, task, ready = ends[1][2], tasks[1], nil
    local t0 = clock()
    for _ = 1, n do
      floor.when_read(q, s, task)
      ready = floor.wait(q, 0)
    end
    local dt = clock() - t0
    bench.check(ready[1] == task, "the task did not come back")
    close_pairs(ends)
    return dt, 1
  end

  for id, case in pairs(cases) do
    cases[id] = function(n)
      floor.task_fields(fields)
      return case(n)
    end
  end
  return cases
end

return M
