-- xpio.sched inside another event loop (issue 21): luv drives it through
-- sched.step, sched.pollfd and sched.deadline, and sleep, timeout, join and
-- xpio.run all work there, on both backends (the poll backend has no
-- descriptor: the bridge then looks at the queue on a 10 ms timer).
local xpio = require "xpio"
local helper = require "helper"

local uv = helper.luv()

--- Runs `sched` inside luv's loop until no task is left, or `limit` seconds
--- (a luv timer); returns whether every task ended, and the steps taken.
local function run_under_luv(sched, limit)
  local steps, finished = 0, false
  local fd = sched.pollfd()
  local poll = fd and uv.new_poll(fd)
  local timer, watchdog = uv.new_timer(), uv.new_timer()
  local function close_all()
    for _, h in pairs({ poll = poll, timer = timer, watchdog = watchdog }) do  -- poll may be nil
      if not h:is_closing() then h:close() end
    end
  end
  local function drive()
    steps = steps + 1
    if not sched.step() then
      finished = true
      return close_all()
    end
    local wait = sched.deadline()
    if not poll then wait = math.min(wait or 0.01, 0.01) end
    timer:stop()
    if wait then timer:start(math.ceil(wait * 1000), 0, drive) end
  end
  -- luv's clock is the time its loop last ran (another spec file's, maybe
  -- a minute ago): timers started now would count from then, and the
  -- watchdog would fire at once.
  uv.update_time()
  if poll then poll:start("r", drive) end
  timer:start(0, 0, drive)
  watchdog:start(math.floor(limit * 1000), 0, close_all)
  uv.run()
  return finished, steps
end

describe("xpio.sched under luv", function()
  it("runs sleep, timeout, join, channels and xpio.run with luv's loop in charge", function()
    if not uv then return pending("luv is not installed") end
    local sched = helper.fresh_sched()
    local a, b = assert(xpio.socketpair())
    local log = {}
    local sleeper = sched.spawn(function()
      local t0 = sched.now()
      assert.is_true(sched.sleep(0.05))
      return sched.now() - t0
    end)
    local main = sched.spawn(function()
      local start = sched.now()
      log.timeout = { sched.timeout(0.05, a.read, a, 10) }
      log.timeout_elapsed = sched.now() - start
      log.sleep_timeout = { sched.timeout(0.02, sched.sleep, 30) }
      log.slept = sched.join(sleeper)
      local ch = sched.channel()
      sched.spawn(function() ch:send(assert(b:write("x")) and "sent") end)
      log.channel = ch:receive()
      log.read = a:read(10)
      log.run = { xpio.run({ "sh", "-c", "echo out" }, { scheduler = sched, timeout = 10 }) }
    end)
    local finished, steps = run_under_luv(sched, 20)
    assert.is_true(finished, "tasks still waiting after 20 s")
    assert.is_true(main.done and sleeper.done)
    assert.are.same({ nil, "timeout" }, log.timeout)
    assert.is_true(log.timeout_elapsed >= 0.045 and log.timeout_elapsed < 5, tostring(log.timeout_elapsed))
    assert.are.same({ nil, "timeout" }, log.sleep_timeout)
    assert.is_true(log.slept >= 0.045, tostring(log.slept))
    assert.are.equal("sent", log.channel)
    assert.are.equal("x", log.read)
    assert.are.same({ "exit", 0, "out\n", "" }, log.run)
    assert.is_true(steps > 1)
    assert.is_false(uv.loop_alive())
    a:close()
    b:close()
  end)

  it("reports when it needs a step: 0 while runnable, the next timer, nil with nothing timed", function()
    local sched = helper.fresh_sched()
    assert.is_nil(sched.deadline())
    local t = sched.spawn(function() sched.sleep(0.2) end)
    assert.are.equal(0, sched.deadline())
    assert.is_true(sched.step())                       -- runs the task into its sleep
    local d = sched.deadline()
    -- the sleep's time left: at most its 0.2 s, and still ahead (a loaded
    -- machine may take most of it between the step and this line)
    assert.is_true(d > 0 and d <= 0.2, tostring(d))
    local fd, err = sched.pollfd()
    if helper.poll_backend() then assert.is_nil(fd) assert.is_string(err)
    else assert.are.equal("integer", math.type(fd)) end
    assert.is_true(sched.step(0.01))                   -- too early: still sleeping
    local deadline = sched.now() + 10
    while sched.step(sched.deadline()) and sched.now() < deadline do end
    assert.is_true(t.done)
    assert.is_false(sched.step())
  end)

  it("a step runs the tasks its timers woke, and refuses NaN", function()
    local sched = helper.fresh_sched()
    local t = sched.spawn(function() sched.sleep(0.05) end)
    assert.is_true(sched.step())                       -- into its sleep
    assert.is_false(sched.step(5))                     -- waits for the timer, then runs the task to its end
    assert.is_true(t.done)
    assert.has_error(function() sched.step(0 / 0) end, "bad argument #1 to 'step' (number expected, got NaN)")
  end)

  it("restores the current task it found", function()
    local sched = helper.fresh_sched()
    local outer = { "an outer scheduler's task" }
    xpio.setCurrentTask(outer)
    sched.spawn(function() sched.sleep(0) end)
    sched.step()
    assert.are.equal(outer, xpio.getCurrentTask())
    sched.run()
    assert.are.equal(outer, xpio.getCurrentTask())
    xpio.setCurrentTask(nil)
  end)
end)
