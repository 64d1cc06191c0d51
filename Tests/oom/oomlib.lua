--- Helpers of the out-of-memory scenarios (Tests/oom/*.lua). oom_host
--- requires this module before it starts counting allocations, so loading
--- it is not swept.
---
--- The scenarios call XPIO through `retry`: an allocation that fails
--- inside a call raises "not enough memory", and in the host's "once" mode
--- (only one allocation fails) trying again must work. That is where a
--- half-changed object or queue shows: the retry raises something else, or
--- a check between the tries fails. In "persist" mode every try fails and
--- the memory error ends the scenario, which is fine too.
---
--- What the scenarios find that is expected but worth counting (a result
--- lost because it was made after the body had consumed its data) goes
--- into the global OOM_NOTE, which the host reports apart from failures.
local xpio = require "xpio"

local oomlib = {}

--- Is `err` the error an allocation failure raises (alone, or with the
--- traceback xpio.sched appends)? Written not to allocate.
function oomlib.is_memory(err)
  return err == "not enough memory"
    or (type(err) == "string" and string.find(err, "not enough memory\n", 1, true) == 1)
end

--- Records an expected loss; the first one is kept.
function oomlib.note(text)
  if not rawget(_G, "OOM_NOTE") then rawset(_G, "OOM_NOTE", text) end
end

oomlib.failures = 0 -- memory errors retry has caught

-- The tries of `retry`, as tail calls so that nothing is allocated for
-- the results (a table.pack would allocate).
local function again(tries, check, f, a, b, c, d, ok, ...)
  if ok then return ... end
  local err = ...
  if not oomlib.is_memory(err) or tries >= 3 then error(err, 0) end
  oomlib.failures = oomlib.failures + 1
  if check then check() end
  return again(tries + 1, check, f, a, b, c, d, pcall(f, a, b, c, d))
end

--- f(a, b, c, d), tried again (up to 3 times in all) after a memory error;
--- another error is raised as it is.
function oomlib.retry(f, a, b, c, d)
  return again(1, nil, f, a, b, c, d, pcall(f, a, b, c, d))
end

--- Like retry, but calls `check()` after each memory error, before trying
--- again: it asserts that the failed call left everything as it was.
function oomlib.retry_checked(check, f, a, b, c, d)
  return again(1, check, f, a, b, c, d, pcall(f, a, b, c, d))
end

--- Raises `message` unless `condition`: a failed invariant, which the host
--- reports as a wrong error (in once mode; in persist mode the message
--- itself may fail to be made, and a memory error is raised instead).
function oomlib.check(condition, message)
  if not condition then error("OOM INVARIANT: " .. message, 0) end
end

--- Is `task` on a queue (scheduled by a when_ function)?
function oomlib.scheduled(task) return rawget(task, "_dequeue") ~= nil end

--- Waits on `q` (try_/when_ style, no scheduler) until `task` comes back,
--- at most `seconds`; the wait is retried after a memory error, and each
--- retry checks that the task is still scheduled (a failed wait must give
--- back the same tasks at the next one).
function oomlib.wait_for(q, task, seconds)
  local deadline = xpio.gettime() + (seconds or 5)
  local function still_there()
    oomlib.check(oomlib.scheduled(task), "a wait that failed unscheduled its task")
  end
  while oomlib.scheduled(task) do
    local ready = oomlib.retry_checked(still_there, q.wait, q, 0.5)
    oomlib.check(ready ~= nil, "wait answered nil with a task scheduled")
    for _, t in ipairs(ready) do
      oomlib.check(not oomlib.scheduled(t), "a returned task is still scheduled")
    end
    oomlib.check(xpio.gettime() < deadline, "timed out waiting for a task")
  end
end

-- What `read` returns for bytes a memory error lost.
oomlib.LOST = "oom: lost"

-- The try_ call of `complete`: its results, and whether a memory error
-- was caught on the way (then a "retry" may mean the bytes were taken).
local function try(tries, object, name, a, b, ok, ...)
  if ok then return tries > 1, ... end
  local err = ...
  if not oomlib.is_memory(err) or tries >= 3 then error(err, 0) end
  oomlib.failures = oomlib.failures + 1
  return try(tries + 1, object, name, a, b, pcall(object[name], object, a, b))
end

-- complete and read: see below.
local function complete(q, object, name, when, a, b, lossy)
  local task = { _queue = q }
  local function not_scheduled()
    oomlib.check(not oomlib.scheduled(task), "a when_ call that failed left its task scheduled")
  end
  while true do
    local failed, r1, r2, r3 = try(1, object, name, a, b, pcall(object[name], object, a, b))
    oomlib.read_failed = failed
    if not (r1 == nil and r2 == "retry") then return r1, r2, r3 end
    if failed and lossy then
      oomlib.note(name .. ": bytes lost when pushing the result failed")
      return nil, oomlib.LOST
    end
    oomlib.retry_checked(not_scheduled, object[when], object, task)
    oomlib.wait_for(q, task)
  end
end

--- Calls the try_ method `name` of `object` until it answers something
--- other than "retry", waiting with `when` ("when_read" or "when_write")
--- on `q` in between. Returns what the try_ method returned. For methods
--- whose results cannot be lost (write, connect, accept: nothing of
--- theirs is allocated after the body has run).
function oomlib.complete(q, object, name, when, a, b)
  return complete(q, object, name, when, a, b, false)
end

--- complete() for a read; `oomlib.read_failed` tells afterwards whether a
--- memory error was caught on the way (a buffered read then returns the
--- next line: the one the failed call took is lost, see readline.lua). The scenarios write before they read, so the
--- bytes are there: a "retry" just after a memory error means the read
--- had taken them and pushing its result failed, an expected loss (the
--- body runs before the result is made): noted, and `nil, oomlib.LOST`.
function oomlib.read(q, object, name, a, b)
  return complete(q, object, name, "when_read", a, b, true)
end

--- The number of child processes of this process (its main thread's).
function oomlib.children()
  local stat = assert(io.open("/proc/self/stat"))
  local pid = stat:read("n")
  stat:close()
  local f = io.open("/proc/" .. pid .. "/task/" .. pid .. "/children")
  if not f then return 0 end
  local n = 0
  for _ in f:read("a"):gmatch("%d+") do n = n + 1 end
  f:close()
  return n
end

return oomlib
