--- xpio.sched: a small coroutine scheduler built only on XPIO's public API.
--
-- Each task runs in a coroutine. XPIO's blocking functions (read, write,
-- accept, connect, wait, resolve, ...) suspend it through the task queue;
-- `sleep` suspends it on a timer. `run` drives everything until no task is
-- left. `timeout` bounds in time the blocking calls of part of a task.
--
--   local sched = require "xpio.sched"
--   sched.spawn(function() ... end)
--   sched.run()
local xpio = require "xpio"

local sched = {}

local queue = xpio.tqueue()
local runnable = {}      -- tasks to resume, in order
local timers = {}        -- a binary min-heap of { deadline, task, position, sleep }: one
                         -- entry per sleeping task (sleep true) and one per task that waits
                         -- in an XPIO call under a deadline (task.timer); nothing else
local alive = 0          -- tasks spawned and not finished
local current = nil

local function push_runnable(task, ...)
  if select("#", ...) > 0 then task.resume_args = table.pack(...) end
  runnable[#runnable + 1] = task
end

-- Timer heap. Each entry knows its position (entry[3]), so that an entry
-- can be moved when its deadline changes and taken out when its wait ends:
-- the heap holds only entries that may still fire, never one per past wait.
local function heap_less(i, j) return timers[i][1] < timers[j][1] end

local function heap_swap(i, j)
  local heap = timers
  heap[i], heap[j] = heap[j], heap[i]
  heap[i][3], heap[j][3] = i, j
end

local function sift_up(i)
  while i > 1 do
    local parent = i // 2
    if not heap_less(i, parent) then break end
    heap_swap(i, parent)
    i = parent
  end
end

local function sift_down(i)
  local n = #timers
  while true do
    local l, r, m = 2 * i, 2 * i + 1, i
    if l <= n and heap_less(l, m) then m = l end
    if r <= n and heap_less(r, m) then m = r end
    if m == i then return end
    heap_swap(m, i)
    i = m
  end
end

local function heap_push(entry)
  local i = #timers + 1
  timers[i] = entry
  entry[3] = i
  sift_up(i)
  return entry
end

-- Take `entry` out of the heap, wherever it is.
local function heap_remove(entry)
  local heap = timers
  local i, n = entry[3], #heap
  entry[3] = nil
  local last = heap[n]
  heap[n] = nil
  if i < n then
    heap[i] = last
    last[3] = i
    sift_up(i)
    sift_down(last[3])
  end
end

-- Give `entry`, in the heap, another deadline.
local function heap_move(entry, deadline)
  local earlier = deadline < entry[1]
  entry[1] = deadline
  if earlier then sift_up(entry[3]) else sift_down(entry[3]) end
end

local unjoined_failure = nil  -- an error no join will collect, raised by run

local function finish(task, ok, ...)
  alive = alive - 1
  task.done = true
  -- A task that dies while still scheduled must not come back from the queue,
  -- and the timer heap must not keep it.
  if task._dequeue then task:_dequeue() end
  if task.timer then
    heap_remove(task.timer)
    task.timer = nil
  end
  if ok then
    task.results = table.pack(...)
  else
    task.failure = ...
  end
  local joiners = task.joiners
  task.joiners = nil
  if joiners then
    for _, joiner in ipairs(joiners) do push_runnable(joiner) end
  elseif not ok then
    unjoined_failure = task.failure
  end
end

-- After each resume that left the task suspended: a task that blocked in an
-- XPIO call (it is on the queue) under a deadline has one timer entry, at
-- that deadline (kept as it is while the deadline stays the same, moved when
-- it changes); any other task has none. So the entry of a task on the queue
-- always bounds its current wait, and an old wait leaves nothing behind.
local function watch_deadline(task)
  local deadline, entry = task.deadline, task.timer
  if deadline and task._dequeue then
    if not entry then
      task.timer = heap_push({ deadline, task })
    elseif entry[1] ~= deadline then
      heap_move(entry, deadline)
    end
  elseif entry then
    heap_remove(entry)
    task.timer = nil
  end
end

-- A deadline passed (its entry is out of the heap): if the task still waits
-- in the call it bounds, take it off the queue and resume it with nil,
-- "timeout", which the blocking call returns. Nothing was consumed: the call
-- had answered "retry". A task the queue returned meanwhile just runs.
local function expire(task)
  task.timer = nil
  if not task._dequeue or task.done then return end
  task:_dequeue()
  push_runnable(task, nil, "timeout")
end

-- What a resume returned: finish the task if its coroutine ended.
local function after_resume(task, ok, ...)
  current = nil
  xpio.setCurrentTask(nil)
  local co = task.co
  if coroutine.status(co) ~= "dead" and ok then watch_deadline(task) end
  if coroutine.status(co) == "dead" then
    if ok then
      finish(task, true, ...)
    else
      finish(task, false, debug.traceback(co, tostring((...)), 0))
    end
  elseif not ok then
    finish(task, false, ...)
  end
end

local function step(task)
  current = task
  xpio.setCurrentTask(task)
  local args = task.resume_args
  if args then
    task.resume_args = nil
    return after_resume(task, coroutine.resume(task.co, table.unpack(args, 1, args.n)))
  end
  return after_resume(task, coroutine.resume(task.co))
end

--- Start `fn(...)` as a new task; returns the task (a table).
function sched.spawn(fn, ...)
  assert(type(fn) == "function", "sched.spawn: function expected")
  local task = { co = coroutine.create(fn), _queue = queue }
  alive = alive + 1
  push_runnable(task, ...)
  return task
end

--- The running task, or nil outside one.
function sched.current() return current end

--- Suspend the running task for `seconds`.
function sched.sleep(seconds)
  local task = assert(current, "sched.sleep: not inside a task")
  heap_push({ xpio.gettime() + (seconds or 0), task, nil, true })
  coroutine.yield()
end

--- Run `fn(...)` in the running task with a deadline `seconds` from now:
--- every XPIO blocking call it makes (read, write, accept, connect, wait,
--- resolve, recvfrom, ...) that would still be waiting at the deadline
--- returns nil, "timeout" instead, with the task off the queue and nothing
--- consumed (the socket stays usable). Returns what `fn` returns. Nested
--- timeouts keep the earliest deadline. `sleep` and `join` are not cut
--- short: they are not XPIO calls.
function sched.timeout(seconds, fn, ...)
  local task = assert(current, "sched.timeout: not inside a task")
  assert(type(seconds) == "number", "sched.timeout: seconds expected")
  local outer = task.deadline
  local deadline = xpio.gettime() + seconds
  if not outer or deadline < outer then task.deadline = deadline end
  local results = table.pack(pcall(fn, ...))
  task.deadline = outer
  if not results[1] then error(results[2], 0) end
  return table.unpack(results, 2, results.n)
end

--- Wait for `task` to finish and return its results; raises its error.
function sched.join(task)
  if not task.done then
    local me = assert(current, "sched.join: not inside a task")
    task.joiners = task.joiners or {}
    table.insert(task.joiners, me)
    repeat coroutine.yield() until task.done
  end
  if task.failure then error(task.failure, 0) end
  return table.unpack(task.results, 1, task.results.n)
end

--- Run until every task has finished. A task's error that no `join`
--- collects is raised from here; the other tasks stay, and a later call to
--- run() goes on with them.
function sched.run()
  while alive > 0 do
    while #runnable > 0 do
      local batch = runnable
      runnable = {}
      for i, task in ipairs(batch) do
        step(task)
        if unjoined_failure then
          -- Keep the rest of the batch for a later run(), then raise.
          local failure = unjoined_failure
          unjoined_failure = nil
          local rest = table.move(batch, i + 1, #batch, 1, {})
          table.move(runnable, 1, #runnable, #rest + 1, rest)
          runnable = rest
          error(failure, 0)
        end
      end
    end
    if alive == 0 then break end
    local timeout = nil
    if timers[1] then timeout = math.max(0, timers[1][1] - xpio.gettime()) end
    if not timeout and queue:isEmpty() then
      error("sched.run: deadlock: " .. alive .. " task(s) wait on nothing", 0)
    end
    local ready = assert(queue:wait(timeout))
    for _, task in ipairs(ready) do push_runnable(task) end
    local now = xpio.gettime()
    while timers[1] and timers[1][1] <= now do
      local entry = timers[1]
      heap_remove(entry)
      if entry[4] then push_runnable(entry[2]) else expire(entry[2]) end
    end
  end
end

sched.now = xpio.gettime

--- The task queue the scheduler waits on (for `fileno` embedding, and for
--- tests that look at what waits).
sched.queue = queue

return sched
