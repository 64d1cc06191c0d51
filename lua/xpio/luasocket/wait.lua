--- xpio.luasocket.wait: wait for one readiness, in a task or outside one.
--
-- LuaSocket's calls block. On XPIO a call that cannot complete must wait
-- for readiness somewhere: inside an `xpio.sched` task it parks the task
-- (the `when_` partner, then a yield, as XPIO's own blocking calls do, so
-- other tasks run meanwhile); anywhere else it waits on a private task
-- queue, blocking the process as LuaSocket would. The deadline is a
-- `xpio.gettime()` reading (or nil: no limit); a wait that reaches it
-- answers `nil, "timeout"` with the task off every queue.
local xpio = require "xpio"

local gettime = xpio.gettime
local running, yield = coroutine.running, coroutine.yield

local M = {}

local queue, private -- made on first use: a program that only runs tasks never needs them

-- Park the running sched task until `when(obj, task)` fires. A resume by
-- anything else (the sched's timeout answers nil, "timeout") leaves it off
-- the queue.
local function park(obj, when, task)
  local ok, err = when(obj, task)
  if not ok then return nil, err end
  local a, b = yield()
  if task._dequeue then task:_dequeue() end
  if a == nil and b ~= nil then return nil, b end
  return true
end

--- The xpio.sched module when the caller runs in a task's own coroutine
--- (where a call may park the task), else nil: a coroutine nested inside a
--- task (a generator, say) is not the task, and its yield is its caller's.
function M.task_sched()
  local sched = package.loaded["xpio.sched"]
  local task = sched and sched.current()
  if task and running() == task.co then return sched end
  return nil
end

-- The private queue the calls outside a task wait on, made on first use.
local function private_queue()
  if not queue then
    queue = assert(xpio.tqueue())
    private = { _queue = queue }
  end
  return queue
end

--- Wait until `when(obj, task)` (a `when_` call such as
--- `function(s, t) return s:when_read(t) end`) wakes, or until `deadline`.
--- Returns true, or nil and a message ("timeout", or the when_ call's error).
function M.wait(obj, when, deadline)
  -- The caller has just tried: with no time left there is nothing to wait
  -- for (`settimeout(0)` answers at once, without a turn of the scheduler).
  if deadline and deadline <= gettime() then return nil, "timeout" end
  local sched = M.task_sched()
  if sched then
    local task = sched.current()
    if deadline then return sched.timeout(deadline - gettime(), park, obj, when, task) end
    return park(obj, when, task)
  end
  private_queue()
  local ok, err = when(obj, private)
  if not ok then return nil, err end
  local limit = deadline and deadline - gettime()
  local ready
  ready, err = queue:wait(limit and (limit > 0 and limit or 0))
  if private._dequeue then
    private:_dequeue()
    return nil, ready and "timeout" or err
  end
  return true
end

--- Sleep `seconds`: a sched sleep in a task, a timed wait on the private
--- queue (with no task on it) elsewhere.
function M.sleep(seconds)
  local sched = M.task_sched()
  if sched then return sched.sleep(seconds) end
  private_queue()
  local deadline = gettime() + seconds
  repeat
    queue:wait(deadline - gettime())
  until gettime() >= deadline
end

-- The readiness calls, made once so that a wait allocates no closure.
function M.readable(s, task) return s:when_read(task) end
function M.writable(s, task) return s:when_write(task) end

return M
