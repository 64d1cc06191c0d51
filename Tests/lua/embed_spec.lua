-- Embedding: an XPIO task queue driven from another event loop (luv), through
-- tqueue:fileno(), as examples/luv_embed.lua does. The descriptor must be
-- readable when tqueue:wait(0) would return tasks, so a luv poll handle on it
-- is enough to run XPIO's blocking functions inside luv.
local xpio = require "xpio"
local helper = require "helper"

-- One copy of luv for every spec file (helper.luv says why).
local uv = helper.luv()
local has_luv = uv ~= nil
local POLL_BACKEND = helper.poll_backend()
local TIME_LIMIT_MS = 10000

-- A minimal scheduler for coroutines whose queue is driven by luv.
local function new_driver()
  local queue = xpio.tqueue()
  local driver = { queue = queue, live = 0, wakeups = 0, errors = {} }

  local function resume(task)
    xpio.setCurrentTask(task)
    local ok, err = coroutine.resume(task.co)
    xpio.setCurrentTask(nil)
    if not ok then driver.errors[#driver.errors + 1] = debug.traceback(task.co, err) end
    if coroutine.status(task.co) == "dead" then driver.live = driver.live - 1 end
  end

  function driver.spawn(fn)
    local task = { co = coroutine.create(fn), _queue = queue }
    driver.live = driver.live + 1
    resume(task)
    return task
  end

  -- Run luv until every task has ended (or TIME_LIMIT_MS passes); returns
  -- true when all ended. Every handle it made is closed before it returns.
  function driver.run()
    local fd = assert(queue:fileno())
    local poll = uv.new_poll(fd)
    local watchdog = uv.new_timer()
    local timed_out = false
    local function finish()
      if not poll:is_closing() then poll:close() end
      if not watchdog:is_closing() then watchdog:close() end
    end
    poll:start("r", function(err)
      assert(not err, err)
      local ready = assert(queue:wait(0))
      if #ready > 0 then driver.wakeups = driver.wakeups + 1 end
      for _, task in ipairs(ready) do resume(task) end
      if driver.live == 0 or #driver.errors > 0 then finish() end
    end)
    uv.update_time()   -- luv's clock stops between runs: count from now
    watchdog:start(TIME_LIMIT_MS, 0, function()
      timed_out = true
      finish()
    end)
    if driver.live == 0 then finish() end
    uv.run()
    queue:close()
    return not timed_out and driver.live == 0
  end

  return driver
end

-- Why a luv test cannot run here, or nil.
local function skip_reason()
  if not has_luv then return "luv is not installed" end
  if POLL_BACKEND then return "the poll backend has no tqueue:fileno()" end
  return nil
end

describe("an XPIO queue driven from luv", function()
  it("has a descriptor on the epoll backend, none on the poll backend", function()
    local q = xpio.tqueue()
    local fd, err = q:fileno()
    if helper.portable() then
      assert.are.same({ nil, helper.UNSUPPORTED }, { fd, err })
    elseif POLL_BACKEND then
      assert.is_nil(fd)
      assert.are.equal("string", type(err))
    else
      assert.are.equal("integer", math.type(fd), tostring(err))
      assert.is_true(fd >= 0)
    end
    q:close()
  end)

  it("completes a ping-pong exchange over a socket pair", function()
    local why = skip_reason()
    if why then return pending(why) end
    local driver = new_driver()
    local a, b = assert(xpio.socketpair())
    local replies = {}

    driver.spawn(function()
      while true do
        local msg = b:read(100)
        if not msg then break end
        assert(b:write((msg:gsub("ping", "pong"))))
      end
      b:close()
    end)
    -- The responder is blocked in read: nothing is ready yet.
    assert.are.equal(1, driver.live)

    driver.spawn(function()
      for n = 1, 5 do
        assert(a:write("ping " .. n))
        replies[n] = a:read(100)
      end
      a:close()
    end)

    local finished = driver.run()
    assert.are.same({}, driver.errors)
    assert.is_true(finished, "tasks still waiting when luv stopped")
    assert.are.same({ "pong 1", "pong 2", "pong 3", "pong 4", "pong 5" }, replies)
    assert.is_true(driver.wakeups >= 1, "no task was ever resumed through the poll handle")
    assert.is_false(uv.loop_alive())
  end)

  it("moves 4 MiB through a socket pair, blocking on both read and write", function()
    local why = skip_reason()
    if why then return pending(why) end
    local driver = new_driver()
    local a, b = assert(xpio.socketpair())
    local chunk = ("0123456789abcdef"):rep(4096)        -- 64 KiB
    local total = 64 * #chunk
    local sent, received = 0, 0

    driver.spawn(function()
      -- 4 MiB is far more than the socket buffers: write must wait on the
      -- queue (the reader runs only then), and only luv can wake it.
      while sent < total do
        sent = sent + assert(a:write(chunk:sub(sent % #chunk + 1)))
      end
      a:close()
    end)
    driver.spawn(function()
      while true do
        local data = b:read(65536)
        if not data then break end
        received = received + #data
      end
      b:close()
    end)

    local finished = driver.run()
    assert.are.same({}, driver.errors)
    assert.is_true(finished, "tasks still waiting when luv stopped")
    assert.are.equal(total, sent)
    assert.are.equal(total, received)
    assert.is_true(driver.wakeups >= 2)
    assert.is_false(uv.loop_alive())
  end)

  it("makes the descriptor readable only once a task is ready", function()
    local why = skip_reason()
    if why then return pending(why) end
    local q = xpio.tqueue()
    local a, b = assert(xpio.socketpair())
    local task = { _queue = q }
    assert(b:when_read(task))

    local events = {}
    local poll = uv.new_poll(assert(q:fileno()))
    local timer = uv.new_timer()
    poll:start("r", function()
      events[#events + 1] = "readable"
      local ready = assert(q:wait(0))
      events[#events + 1] = #ready
      poll:close()
      if not timer:is_closing() then timer:close() end
    end)
    -- 100 ms with no data: the descriptor must stay quiet. Then write, which
    -- makes b readable and so the task ready.
    uv.update_time()   -- luv's clock stops between runs: count from now
    timer:start(100, 0, function()
      events[#events + 1] = "write"
      assert(a:try_write("x"))
      timer:start(TIME_LIMIT_MS, 0, function()
        events[#events + 1] = "timeout"
        if not poll:is_closing() then poll:close() end
        timer:close()
      end)
    end)
    uv.run()
    assert.are.same({ "write", "readable", 1 }, events)
    assert.is_nil(task._dequeue)
    assert.are.equal("x", b:try_read(10))
    a:close()
    b:close()
    q:close()
    assert.is_false(uv.loop_alive())
  end)

  -- Closing a socket wakes the tasks waiting on it, with no kernel event on
  -- the socket itself; the queue's descriptor must still become readable.
  it("wakes luv when a socket a task waits on is closed", function()
    local why = skip_reason()
    if why then return pending(why) end
    local driver = new_driver()
    local a, b = assert(xpio.socketpair())
    local result
    driver.spawn(function()
      result = table.pack(b:read(10))
    end)
    assert.are.equal(1, driver.live)
    local timer = uv.new_timer()
    timer:start(20, 0, function()
      timer:close()
      assert(b:close())
    end)
    local finished = driver.run()
    a:close()
    assert.are.same({}, driver.errors)
    assert.is_true(finished, "the reader was not woken by close")
    assert.is_nil(result[1])
    assert.are.equal("string", type(result[2]))
    assert.is_false(uv.loop_alive())
  end)
end)
