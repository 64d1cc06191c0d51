-- Drive XPIO tasks from luv's event loop instead of xpio.sched.
--
-- tqueue:fileno() is a descriptor that is readable whenever tqueue:wait(0)
-- would return tasks. luv watches it with a poll handle; the callback collects
-- the ready tasks with wait(0) and resumes them. The tasks themselves use
-- XPIO's blocking read/write on a socket pair, exactly as under xpio.sched.
-- (Needs the default epoll backend: a poll-backend queue has no descriptor.)
--
--   LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/luv_embed.lua
local uv = require "luv"
local xpio = require "xpio"

local queue = xpio.tqueue()
local live = 0                 -- tasks started and not finished
local wakeups = 0              -- poll callbacks that found tasks ready

-- Run a task until it blocks (XPIO queued it and yielded) or ends.
local function resume(task)
  xpio.setCurrentTask(task)    -- blocking calls schedule the current task
  local ok, err = coroutine.resume(task.co)
  xpio.setCurrentTask(nil)
  if not ok then error(debug.traceback(task.co, err), 0) end
  if coroutine.status(task.co) == "dead" then live = live - 1 end
end

local function spawn(fn)
  local task = { co = coroutine.create(fn), _queue = queue }
  live = live + 1
  resume(task)
end

-- The bridge: when the queue's descriptor is readable, run what is ready.
local poll = uv.new_poll(assert(queue:fileno()))
poll:start("r", function(err)
  assert(not err, err)
  local ready = queue:wait(0)
  if #ready > 0 then wakeups = wakeups + 1 end
  for _, task in ipairs(ready) do resume(task) end
  if live == 0 then poll:close() end     -- nothing left: let uv.run return
end)

local a, b = assert(xpio.socketpair())
local ROUNDS = 3

-- Answers every "ping N" with "pong N" until the other end closes.
spawn(function()
  while true do
    local msg = b:read(100)    -- nothing to read yet: this task waits in `queue`
    if not msg then break end
    assert(b:write((msg:gsub("ping", "pong"))))
  end
  b:close()
end)

-- Started from a luv timer, to show that luv is the loop in charge.
local replies = {}
local timer = uv.new_timer()
timer:start(20, 0, function()
  timer:close()
  spawn(function()
    for n = 1, ROUNDS do
      assert(a:write("ping " .. n))
      replies[n] = assert(a:read(100))
      print("got " .. replies[n])
    end
    a:close()
  end)
end)

uv.run()
assert(#replies == ROUNDS and replies[ROUNDS] == "pong " .. ROUNDS, "exchange incomplete")
print(("luv_embed: %d round trips through luv, %d poll wakeups"):format(#replies, wakeups))
