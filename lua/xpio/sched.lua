--- xpio.sched: a small coroutine scheduler built only on XPIO's public API.
--
-- Each task runs in a coroutine. XPIO's blocking functions (read, write,
-- accept, connect, wait, resolve, ...) suspend it through the task queue;
-- the scheduler's own waits (sleep, join, and the channel, semaphore and
-- condition of xpio.sched_sync) suspend it through `suspend` below. Every
-- wait of either kind can be ended early by `abort`: that is how
-- `timeout` and `cancel` reach all of them, and why nothing is lost when
-- they do (the wait is undone before the task runs again).
--
--   local sched = require "xpio.sched"
--   sched.spawn(function() ... end)
--   sched.run()
--
-- A task is a table: `co` its coroutine, `done` once it has ended, then
-- `results` (a table.pack) or `failed`/`failure` (its error value), and the
-- fields the task queue owns (`_queue`, `_dequeue`, `_dequeuedata`), and
-- `_thread` (its coroutine: XPIO's blocking calls refuse to wait in any
-- other, Spec/tqueue.spec). The other fields are private.
local xpio = require "xpio"

local gettime, setCurrentTask = xpio.gettime, xpio.setCurrentTask
local resume, yield, corunning, unpack = coroutine.resume, coroutine.yield, coroutine.running, table.unpack

local sched = {}

local queue = xpio.tqueue()
local runnable = {}      -- tasks to resume, in order (woken by the scheduler's own waits)
local spare = {}         -- the other run table: the two swap, so a batch allocates nothing
local timers = {}        -- a binary min-heap of { time, task, position, sleep }: one entry per
                         -- sleeping task (sleep true) and one per task that waits under a
                         -- deadline (task.timer); nothing else
local alive = 0          -- tasks spawned and not finished
local current = nil

local Task = { __name = "xpio.sched.task" }

-- Arguments ------------------------------------------------------------------

-- The standard library's messages (luaL_argerror, luaL_typeerror), raised at
-- the level of whoever called the checked function.
local function typename(v)
  local mt = getmetatable(v)
  local name = type(mt) == "table" and rawget(mt, "__name")
  return type(name) == "string" and name or type(v)
end

local function argerror(n, fname, message)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, message), 3)
end

local function checktype(v, expected, n, fname, optional)
  if type(v) == expected or (optional and v == nil) then return v end
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, fname, expected,
    v == nil and "no value" or typename(v)), 3)
end

-- A number of seconds: NaN would break the timer heap's order.
local function checkseconds(v, n, fname)
  if type(v) ~= "number" then
    error(("bad argument #%d to '%s' (number expected, got %s)"):format(n, fname, v == nil and "no value" or typename(v)), 3)
  end
  if v ~= v then error(("bad argument #%d to '%s' (number expected, got NaN)"):format(n, fname), 3) end
  return v
end

local function checktask(v, n, fname)
  if getmetatable(v) ~= Task then
    error(("bad argument #%d to '%s' (xpio.sched.task expected, got %s)"):format(n, fname,
      v == nil and "no value" or typename(v)), 3)
  end
  return v
end

--- The running task; `fname` names the function that needs one.
local function in_task(fname)
  if current then return current end
  error(("xpio.sched: %s must be called from a task"):format(fname), 3)
end

--- The running task, about to wait: only its own coroutine can (a
--- coroutine.wrap iterator inside it would yield to the iterator's caller,
--- not to the scheduler, and the task would wait on two things at once),
--- as only there can XPIO's blocking calls (Spec/sched.spec).
local function running(fname)
  local task = current
  if not task then error(("xpio.sched: %s must be called from a task"):format(fname), 3) end
  if corunning() ~= task.co then
    error(("xpio.sched: %s would wait in a coroutine that is not the task's own (a coroutine inside a task cannot wait)"):format(fname), 3)
  end
  return task
end

-- Timer heap -------------------------------------------------------------------
-- Each entry knows its position (entry[3]), so that an entry can be moved
-- when its deadline changes and taken out when its wait ends: the heap holds
-- only entries that may still fire, never one per past wait.

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

-- Take `entry` out of the heap, wherever it is (nothing if it is not in).
local function heap_remove(entry)
  local i = entry[3]
  if not i then return end
  local heap = timers
  local n = #heap
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

-- Give `entry`, in the heap, another time.
local function heap_move(entry, time)
  local earlier = time < entry[1]
  entry[1] = time
  if earlier then sift_up(entry[3]) else sift_down(entry[3]) end
end

-- Wait lists -------------------------------------------------------------------
-- A FIFO of waiters ({ task, value }), doubly linked so that a cancelled or
-- timed-out waiter leaves it at once, from anywhere: a list never holds a
-- waiter that is not waiting.

local function list_push(list, task, value)
  local last = list.last
  local waiter = { task = task, value = value, list = list, prev = last }
  if last then last.next = waiter else list.first = waiter end
  list.last = waiter
  return waiter
end

local function list_remove(waiter)
  local list = waiter.list
  if not list then return end
  local prev, nxt = waiter.prev, waiter.next
  if prev then prev.next = nxt else list.first = nxt end
  if nxt then nxt.prev = prev else list.last = prev end
  waiter.list, waiter.prev, waiter.next = nil, nil, nil
end

local function list_shift(list)
  local waiter = list.first
  if waiter then list_remove(waiter) end
  return waiter
end

-- Waiting and waking -------------------------------------------------------------

--- Makes `task` runnable: the run list resumes it with `a, b` (a blocking
--- XPIO call needs exactly two values for `nil, reason`; `suspend` drops a
--- nil `b`). Whoever wakes a task has already taken it off what it waited
--- on. The values stay in the task until its next wake: the run loop does
--- not spend instructions clearing them.
local function wake(task, a, b)
  task.wait_cancel, task.wait_data = false, false
  task.ra, task.rb = a, b
  runnable[#runnable + 1] = task
end

local function one_or_two(a, b)
  if b == nil then return a end
  return a, b
end

--- Suspends the running task in a scheduler wait until `wake`; `cancel(data)`
--- undoes the wait (takes the task off what it waits on) when `abort` ends it.
--- Returns what `wake` passed: `a`, or `a, b` when b is not nil.
local function suspend(cancel, data)
  local task = current
  task.wait_cancel, task.wait_data = cancel, data
  return one_or_two(yield())
end

--- Ends `task`'s current wait, whatever it is, with `nil, reason`: undone
--- first (off the queue, off the wait list, off the timer heap), so nothing
--- it waited for is consumed. Returns false when the task was not waiting.
local function abort(task, reason)
  local cancel = task.wait_cancel
  if cancel then
    cancel(task.wait_data)
  elseif task._dequeue then
    task:_dequeue()
  else
    return false
  end
  local entry = task.timer
  if entry then
    heap_remove(entry)
    task.timer = nil
  end
  wake(task, nil, reason)
  return true
end

-- After a resume of a task with something to watch (task.watch: a deadline,
-- a deadline's timer entry, or a cancellation not yet delivered). A task
-- that waits under a deadline has one timer entry, at that deadline; any
-- other task has none. A pending cancellation ends the wait it just began.
local function after_wait(task)
  if task.done then return end
  local waiting = task.wait_cancel or task._dequeue
  local reason = task.cancel_reason
  if reason and waiting then
    task.cancel_reason = nil
    abort(task, reason)
    waiting = nil
  end
  local deadline, entry = task.deadline, task.timer
  if deadline and waiting then
    if not entry then
      task.timer = heap_push({ deadline, task })
    elseif entry[1] ~= deadline then
      heap_move(entry, deadline)
    end
  elseif entry then
    heap_remove(entry)
    task.timer = nil
  end
  if not (deadline or task.timer or task.cancel_reason) then task.watch = nil end
end

-- Ending -----------------------------------------------------------------------

local function report(_, _, traceback)
  io.stderr:write("xpio.sched: a task failed: ", traceback, "\n")
end

local handler = report   -- sched.onerror's

-- What every end of a task does: off the queue, the heap and whatever it
-- was about to wait on (a task whose yield failed, out of memory, after its
-- wait was set up: its timer must not resume the dead coroutine), joiners
-- woken.
local function ended(task)
  alive = alive - 1
  task.done = true
  task.cancel_reason, task.watch = nil, nil
  local cancel = task.wait_cancel
  if cancel then
    task.wait_cancel = false
    cancel(task.wait_data)
    task.wait_data = false
  end
  -- A task that ends while still scheduled must not come back from the
  -- queue, and the timer heap must not keep it.
  if task._dequeue then task:_dequeue() end
  if task.timer then
    heap_remove(task.timer)
    task.timer = nil
  end
  local joiners = task.joiners
  if not joiners then return false end
  task.joiners = nil
  local woke = false
  while true do
    local waiter = list_shift(joiners)
    if not waiter then return woke end
    wake(waiter.task, true)
    woke = true
  end
end

-- Runs in the task's own coroutine, as its last act (the task is still
-- the current one: the loop resumed it last).
local function finished(...)
  local task = current
  task.results = table.pack(...)
  ended(task)
end

-- The body of every task's coroutine: one function for all, where a
-- closure per task (over the task and its function) cost 128 bytes of each
-- connection a server holds. Its first resume passes what spawn left in
-- `ra`: the task's function, or a table.pack of it and its arguments (one
-- parameter, cleared here: the task's coroutine waits with this frame at
-- its bottom, and a frame larger by a slot or two made the blocking calls
-- above it grow the coroutine's stack from 40 slots to 80).
local function task_main(start)
  current.ra = nil
  if type(start) == "function" then return finished(start()) end
  return finished(start[1](unpack(start, 2, start.n)))
end

-- The message a traceback starts with, for any error value.
local function message_of(err)
  if type(err) == "string" or type(err) == "number" then return tostring(err) end
  local mt = getmetatable(err)
  if type(mt) == "table" and mt.__tostring then
    local ok, text = pcall(tostring, err)   -- a __tostring that raises must not stop the loop
    if ok and type(text) == "string" then return text end
  end
  return ("(error object is a %s value)"):format(type(err))
end

-- A task's coroutine raised `err`. With nobody joining, the handler gets it
-- (outside any task); returns the handler's own error, boxed, when it
-- raised one (strict mode).
local function failed(task, err)
  current = nil
  task.failed, task.failure = true, err
  task.traceback = debug.traceback(task.co, message_of(err), 0)
  -- A coroutine that ends in an error keeps its stack, and with it its
  -- to-be-closed variables: closing it closes them (a <close> connection
  -- of a failed handler goes now, not at some collection).
  coroutine.close(task.co)
  if ended(task) then return nil end
  local ok, raised = pcall(handler, err, task, task.traceback)
  if not ok then return { raised } end
  return nil
end

-- Running ----------------------------------------------------------------------

-- The handler raised for the task at batch[i]: the rest of the batch goes
-- first in a later run or step (tasks the queue returned with no values to
-- resume with), then the error is raised.
local function raise_from_batch(raised, batch, i, n, from_queue)
  for j = n, i + 1, -1 do
    local task = batch[j]
    batch[j] = nil
    if from_queue then task.ra, task.rb = nil, nil end
    table.insert(runnable, 1, task)
  end
  current = nil
  error(raised[1], 0)
end

-- Moves the tasks whose timers have passed to the run list.
local function fire_timers()
  local now = gettime()
  local entry = timers[1]
  while entry and entry[1] <= now do
    heap_remove(entry)
    local task = entry[2]
    if entry[4] then
      wake(task, true)
    else
      task.timer = nil
      abort(task, "timeout")
    end
    entry = timers[1]
  end
end

local SPINS = 8   -- run-list batches in a row before the queue is looked at anyway

-- The scheduler's loop, the hot path of every wake-up: kept flat (no call
-- but the resume and setCurrentTask per task) because its cost per
-- wake-up is the largest part of XPIO's gap to luv on a busy server
-- (bench/sched_wakeup.lua counts it). Each turn runs the tasks woken by
-- the scheduler (the run list), or waits on the queue (for `limit`
-- seconds at most, less when a timer comes first) and runs what it
-- returned, then fires the timers. After SPINS run-list batches in a row
-- the queue is polled anyway, so tasks handing values back and forth
-- cannot starve the sockets. `once`: one turn of each kind (step), then
-- the tasks its timers woke (`stepped`: that last batch is under way).
local function loop(once, limit)
  local wait = queue.wait
  local spins = 0
  local stepped = false
  while true do
    local batch = runnable
    local timeout, entry = limit, timers[1]
    if batch[1] then
      if spins < SPINS then
        spins = spins + 1
        runnable, spare = spare, batch
        local n = #batch
        for i = 1, n do
          local task = batch[i]
          batch[i] = nil
          current = task
          setCurrentTask(task)
          local ok, err = resume(task.co, task.ra, task.rb)
          if not ok then
            local raised = failed(task, err)
            if raised then raise_from_batch(raised, batch, i, n, false) end
          elseif task.watch then
            after_wait(task)
          end
        end
        if not once then goto continue end
        if stepped then
          current = nil
          return
        end
      end
      spins = 0
      timeout = 0
    elseif entry then
      local t = entry[1] - gettime()
      if t < 0 then t = 0 end
      if not timeout or t < timeout then timeout = t end
    end
    do
      local ready, err = wait(queue, timeout)
      if not ready then
        current = nil
        if err then error("xpio.sched: " .. err, 0) end
        if once or alive == 0 then return end
        error("xpio.sched.run: deadlock: " .. alive .. " task(s) wait on nothing", 0)
      end
      local n = #ready
      for i = 1, n do
        local task = ready[i]
        current = task
        setCurrentTask(task)
        local ok, err2 = resume(task.co)
        if not ok then
          local raised = failed(task, err2)
          if raised then raise_from_batch(raised, ready, i, n, true) end
        elseif task.watch then
          after_wait(task)
        end
      end
      if entry then
        local woken = #runnable
        fire_timers()
        if once and #runnable > woken then
          stepped = true
          goto continue
        end
      end
      if once then
        current = nil
        return
      end
    end
    ::continue::
  end
end

local function previous_task()
  if current then error("xpio.sched: run and step cannot be called from a task", 3) end
  return xpio.getCurrentTask()
end

-- Runs loop(...) with the current task restored afterwards, even on error.
local function keeping_current(previous, ...)
  local ok, err = pcall(loop, ...)
  current = nil
  setCurrentTask(previous)
  if not ok then error(err, 0) end
end

-- API --------------------------------------------------------------------------

--- Start `fn(...)` as a new task; returns the task.
function sched.spawn(fn, ...)
  checktype(fn, "function", 1, "spawn")
  -- The fields a wait, a wake-up and the end set exist from the start, so
  -- setting them never grows the table: a memory error there would leave a
  -- wait registered for a task that never yielded, or count its end twice.
  local start = select("#", ...) > 0 and table.pack(fn, ...) or fn
  local task = setmetatable({ _queue = queue, done = false, wait_cancel = false, wait_data = false, ra = start }, Task)
  task.co = coroutine.create(task_main)
  task._thread = task.co
  alive = alive + 1
  runnable[#runnable + 1] = task
  return task
end

--- The running task, or nil outside one.
function sched.current() return current end

local function cancel_sleep(entry) heap_remove(entry) end

--- Suspend the running task for `seconds`; returns true, or nil, "timeout"
--- / nil, "cancelled" when a timeout or a cancellation ends it first.
function sched.sleep(seconds)
  checkseconds(seconds, 1, "sleep")
  local task = running("sleep")
  return suspend(cancel_sleep, heap_push({ gettime() + seconds, task, nil, true }))
end

local function leave(task, outer, ok, ...)
  task.deadline = outer
  if not ok then error((...), 0) end
  return ...
end

--- Run `fn(...)` in the running task with a deadline `seconds` from now:
--- every wait it makes (an XPIO blocking call, sleep, join, a channel, a
--- semaphore, a condition) still waiting at the deadline returns
--- nil, "timeout" instead, with nothing consumed. Returns what `fn`
--- returns; raises what it raises. Nested timeouts keep the earliest
--- deadline: an inner one cannot extend an outer one.
function sched.timeout(seconds, fn, ...)
  checkseconds(seconds, 1, "timeout")
  checktype(fn, "function", 2, "timeout")
  local task = in_task("timeout")
  local outer = task.deadline
  local deadline = gettime() + seconds
  if not outer or deadline < outer then
    task.deadline = deadline
    task.watch = true
  end
  return leave(task, outer, pcall(fn, ...))
end

--- Wait for `task` to finish and return its results; raises its error
--- value itself (a table stays a table). A timeout or cancellation ends the
--- wait with nil, "timeout" / nil, reason.
function sched.join(task)
  checktask(task, 1, "join")
  if not task.done then
    local me = running("join")
    if task == me then error("xpio.sched: a task cannot join itself", 2) end
    local joiners = task.joiners
    if not joiners then
      joiners = {}
      task.joiners = joiners
    end
    local ok, reason = suspend(list_remove, list_push(joiners, me))
    if not ok then return nil, reason end
  end
  if task.failed then error(task.failure, 0) end
  return unpack(task.results, 1, task.results.n)
end

--- Cancel `task`: its current wait, or its next one if it is not waiting,
--- returns nil, `reason` (default "cancelled"), once. Returns true, or
--- false for a finished task.
function sched.cancel(task, reason)
  checktask(task, 1, "cancel")
  checktype(reason, "string", 2, "cancel", true)
  if task.done then return false end
  reason = reason or "cancelled"
  if task ~= current and abort(task, reason) then return true end
  if not task.cancel_reason then task.cancel_reason = reason end
  task.watch = true
  return true
end

--- `task`'s traceback when it ended with an error, else nil.
function sched.traceback(task)
  checktask(task, 1, "traceback")
  return task.traceback
end

--- Set the handler of errors in tasks that nobody joins (a join later
--- still raises the error); `fn(err, task, traceback)`, nil for the
--- default, which writes the traceback to stderr. Returns the previous one.
--- An error the handler raises comes out of run() or step(): strict mode is
--- `sched.onerror(sched.raise)`.
function sched.onerror(fn)
  checktype(fn, "function", 1, "onerror", true)
  local previous = handler
  handler = fn or report
  return previous
end

--- The strict handler: raises the task's error (from run or step).
function sched.raise(err) error(err, 0) end

--- Run until every task has finished. The tasks are resumed where run is
--- called; it restores the current task it found.
function sched.run()
  keeping_current(previous_task(), false, nil)
end

--- One step for another event loop: run the tasks already runnable, then
--- collect what is ready (waiting at most `timeout` seconds, default 0,
--- less when a timer comes first) and run it, once. Returns whether tasks
--- remain.
function sched.step(timeout)
  if timeout ~= nil then checkseconds(timeout, 1, "step") end
  keeping_current(previous_task(), true, timeout or 0)
  return alive > 0
end

--- A descriptor readable when step() has tasks to collect (the queue's
--- epoll descriptor), or nil, message on the poll backend.
function sched.pollfd() return queue:fileno() end

--- Seconds until the scheduler needs a step: 0 while a task is runnable,
--- the time to the next timer, or nil (wait for pollfd only).
function sched.deadline()
  if runnable[1] then return 0 end
  local entry = timers[1]
  if not entry then return nil end
  local t = entry[1] - gettime()
  return t > 0 and t or 0
end

sched.now = gettime

--- The task queue the scheduler waits on (for tests that look at what waits).
sched.queue = queue

-- channel, semaphore, condition
require("xpio.sched_sync")(sched, {
  suspend = suspend, wake = wake, running = running, argerror = argerror,
  list_push = list_push, list_remove = list_remove, list_shift = list_shift, typename = typename,
})

return sched
