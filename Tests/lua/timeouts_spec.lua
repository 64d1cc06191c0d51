-- Every blocking call can be bounded (issue 12): under xpio.sched's
-- timeout, a call whose peer never answers returns nil, "timeout", its task
-- is off the queue, nothing is consumed and the object stays usable.
-- Contract: lua/xpio/sched.lua (timeout) and Spec/tqueue.spec (a blocking
-- call resumed with nil, message returns them).
local xpio = require "xpio"
local helper = require "helper"

local LIMIT = 0.1

--- Runs `fn` in a fresh scheduler's task; asserts that `call()` under a
--- timeout returns nil, "timeout" no sooner than the limit, with the
--- scheduler's queue empty; then runs `after()` (the object still works).
local function times_out(call, after)
  local sched = helper.fresh_sched()
  helper.run_tasks(sched, 10, { function()
    local start = sched.now()
    local results = table.pack(sched.timeout(LIMIT, call))
    local elapsed = sched.now() - start
    assert.are.same({ n = 2, nil, "timeout" }, results)
    assert.is_true(elapsed >= LIMIT * 0.9 and elapsed < LIMIT + 1, "took " .. elapsed .. " s")
    assert.is_true(sched.queue:isEmpty(), "the task is still on the queue")
    assert.is_nil(sched.current()._dequeue)
    if after then after(sched) end
  end })
end

describe("sched.timeout", function()
  it("bounds read, and the socket still reads what comes later", function()
    local a, b = assert(xpio.socketpair())
    times_out(function() return a:read(10) end, function()
      assert(b:write("late"))
      assert.are.equal("late", a:read(10))
    end)
    a:close()
    b:close()
  end)

  it("bounds write to a peer that never reads, and nothing half-written is lost", function()
    local a, b = assert(xpio.socketpair())
    assert(a:setsockopt("SO_SNDBUF", 4096))
    local sent = helper.fill(a, 4096)
    times_out(function() return a:write("more") end, function()
      local got = 0
      while got < sent do
        local data = assert(b:read(65536))
        got = got + #data
      end
      assert.are.equal(sent, got)                  -- exactly what was written before
      assert.are.equal(4, a:write("more"))         -- and writable again
      assert.are.equal("more", b:read(10))
    end)
    a:close()
    b:close()
  end)

  it("bounds accept, and the listener still accepts", function()
    local l = assert(xpio.socket("TCP"))
    assert(l:bind("127.0.0.1:0"))
    assert(l:listen())
    times_out(function() return l:accept() end, function(sched)
      local c = assert(xpio.socket("TCP"))
      local connecting = sched.spawn(function() return c:connect(l:getsockname()) end)
      local s = assert(l:accept())
      assert.is_true(sched.join(connecting))
      s:close()
      c:close()
    end)
    l:close()
  end)

  it("bounds connect to a listener whose backlog is full", function()
    local l = assert(xpio.socket("TCP"))
    assert(l:bind("127.0.0.1:0"))
    assert(l:listen(0))
    local filler = {}
    local c
    -- fill the accept queue: the next SYN is dropped and connect waits
    times_out(function()
      for i = 1, 64 do
        c = assert(xpio.socket("TCP"))
        filler[i] = c
        local ok, err = c:connect(l:getsockname())
        if not ok then return ok, err end
      end
      return "the backlog never filled"
    end)
    for _, s in ipairs(filler) do s:close() end
    l:close()
  end)

  it("bounds recvfrom", function()
    local u = assert(xpio.socket("UDP"))
    assert(u:bind("127.0.0.1:0"))
    times_out(function() return u:recvfrom(100) end, function()
      local v = assert(xpio.socket("UDP"))
      assert(v:try_sendto("ping", u:getsockname()))
      assert.are.equal("ping", (u:recvfrom(100)))
      v:close()
    end)
    u:close()
  end)

  it("bounds process:wait on a child that keeps running", function()
    local p = assert(xpio.spawn({ "sleep", "30" }, xpio.env))
    times_out(function() return p:wait() end, function()
      assert(p:kill())
      assert.are.same({ "signal", 9 }, { p:wait() })
    end)
  end)

  it("nests: the earliest deadline wins, and a call after the scope is not cut short", function()
    local a, b = assert(xpio.socketpair())
    local sched = helper.fresh_sched()
    helper.run_tasks(sched, 10, { function()
      local start = sched.now()
      local ok, err = sched.timeout(5, function()
        return sched.timeout(0.05, function() return a:read(1) end)
      end)
      assert.is_nil(ok)
      assert.are.equal("timeout", err)
      assert.is_true(sched.now() - start < 1)
      sched.spawn(function()
        sched.sleep(0.2)
        assert(b:write("x"))
      end)
      assert.are.equal("x", a:read(1))              -- waits past the old deadline
    end })
    a:close()
    b:close()
  end)

  it("returns what the function returns, and raises what it raises", function()
    local sched = helper.fresh_sched()
    helper.run_tasks(sched, 5, { function()
      assert.are.same({ 1, 2, n = 2 }, table.pack(sched.timeout(1, function() return 1, 2 end)))
      local ok, err = pcall(sched.timeout, 1, function() error("boom", 0) end)
      assert.is_false(ok)
      assert.are.equal("boom", err)
    end })
  end)
end)

describe("the raw protocol", function()
  it("a blocking call resumed with nil, message returns them, unscheduled", function()
    local q = xpio.tqueue()
    local a, b = assert(xpio.socketpair())
    local task = { _queue = q }
    local co = coroutine.create(function() return a:read(10) end)
    xpio.setCurrentTask(task)
    assert.is_true(coroutine.resume(co))
    xpio.setCurrentTask(nil)
    assert.is_function(task._dequeue)                -- waiting on the queue
    -- a third-party scheduler's timeout: dequeue, then resume with nil, message
    task:_dequeue()
    xpio.setCurrentTask(task)
    local ok, data, err = coroutine.resume(co, nil, "timeout")
    xpio.setCurrentTask(nil)
    assert.is_true(ok)
    assert.is_nil(data)
    assert.are.equal("timeout", err)
    assert.is_true(q:isEmpty())
    -- without the dequeue, the blocking call unschedules the task itself
    co = coroutine.create(function() return a:read(10) end)
    xpio.setCurrentTask(task)
    coroutine.resume(co)
    local _, _, err2 = coroutine.resume(co, nil, "cancelled")
    xpio.setCurrentTask(nil)
    assert.are.equal("cancelled", err2)
    assert.is_nil(task._dequeue)
    assert.is_true(q:isEmpty())
    a:close()
    b:close()
    q:close()
  end)
end)

-- The timer behind sched.timeout: one entry per task that waits under a
-- deadline, moved when the deadline changes and dropped when the wait
-- ends or the task finishes, so memory stays flat however many waits a
-- long timeout bounds, and a finished task is not kept.
describe("sched.timeout's timers", function()
  local function heap_kib()
    collectgarbage()
    collectgarbage()
    return collectgarbage("count")
  end

  it("keep memory flat over many waits under a long timeout", function()
    local a, b = assert(xpio.socketpair())
    local sched = helper.fresh_sched()
    local N = 20000
    local growth = {}
    helper.run_tasks(sched, 60, {
      function()
        -- every read waits for the peer's byte: N waits under one deadline...
        local before = heap_kib()
        sched.timeout(3600, function()
          for _ = 1, N do
            assert.are.equal("x", a:read(1))
            assert(a:write("y"))
          end
        end)
        growth.one = heap_kib() - before
        -- ...then N waits, each under a deadline of its own
        before = heap_kib()
        for _ = 1, N do
          assert.are.equal("x", sched.timeout(3600, a.read, a, 1))
          assert(a:write("y"))
        end
        growth.each = heap_kib() - before
      end,
      function()
        for _ = 1, 2 * N do
          assert(b:write("x"))
          assert.are.equal("y", b:read(1))
        end
      end,
    })
    -- the old heap kept an entry per wait until its deadline: about 2.5 MiB here
    assert.is_true(growth.one < 512, "one timeout over " .. N .. " waits: the heap grew " .. growth.one .. " KiB")
    assert.is_true(growth.each < 512, N .. " timeouts: the heap grew " .. growth.each .. " KiB")
    a:close()
    b:close()
  end)

  it("do not keep a task that finished after waiting under a timeout", function()
    local a, b = assert(xpio.socketpair())
    local sched = helper.fresh_sched()
    local finished = setmetatable({}, { __mode = "k" })
    helper.run_tasks(sched, 10, { function()
      local reader = sched.spawn(function() return sched.timeout(3600, a.read, a, 1) end)
      finished[reader] = true
      sched.sleep(0.02)                               -- the reader waits, under the deadline
      assert(b:write("x"))
      assert.are.equal("x", sched.join(reader))
    end })
    collectgarbage()
    collectgarbage()
    assert.is_nil(next(finished), "the finished task is still reachable (from the timer heap)")
    assert.is_true(sched.queue:isEmpty())             -- (and the scheduler is still there)
    a:close()
    b:close()
  end)

  it("follow the current wait: an ended wait never cuts a later one short", function()
    local a, b = assert(xpio.socketpair())
    local sched = helper.fresh_sched()
    local function write_later(seconds, data)
      sched.spawn(function()
        sched.sleep(seconds)
        assert(b:write(data))
      end)
    end
    helper.run_tasks(sched, 10, { function()
      -- a wait that data ends, under a short deadline; then, past that
      -- deadline: a wait without one, a wait under a later one, a sleep
      write_later(0.01, "1")
      assert.are.equal("1", sched.timeout(0.1, a.read, a, 1))
      write_later(0.2, "2")
      assert.are.equal("2", a:read(1))
      sched.timeout(0.1, function()
        write_later(0.01, "3")
        assert.are.equal("3", a:read(1))
        assert.are.same({ nil, "timeout" }, { sched.sleep(5) }) -- a sleep is cut short too
      end)
      write_later(0.01, "4")
      assert.are.equal("4", sched.timeout(0.05, a.read, a, 1))
      write_later(0.2, "5")
      assert.are.equal("5", sched.timeout(5, a.read, a, 1))
      -- and a moved deadline still fires
      local start = sched.now()
      assert.are.same({ nil, "timeout" }, { sched.timeout(0.05, a.read, a, 1) })
      assert.is_true(sched.now() - start < 1)
    end })
    a:close()
    b:close()
  end)
end)
