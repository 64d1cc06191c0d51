-- xpio.sched's synchronisation (issue 21): channels, semaphores and
-- conditions, and the two ways a wait ends early, sched.timeout and
-- sched.cancel, over every kind of wait, with nothing lost when they do.
-- Contract: lua/xpio/sched.lua and lua/xpio/sched_sync.lua.
local xpio = require "xpio"
local helper = require "helper"

--- Runs `fns` as tasks of a fresh (strict) scheduler, for at most 10 s;
--- returns the scheduler and the tasks.
local function run(fns)
  local sched = helper.fresh_sched()
  local list = {}
  for i, fn in ipairs(fns) do list[i] = function() return fn(sched) end end
  return sched, helper.run_tasks(sched, 10, list)
end

local function pack(...) return table.pack(...) end

describe("sched.channel", function()
  it("unbuffered: a send waits until a receiver has the value", function()
    local events = {}
    run({
      function(sched)
        local ch = sched.channel()
        local receiver = sched.spawn(function()
          sched.sleep(0.02)
          events[#events + 1] = "receiving"
          events[#events + 1] = ch:receive()
        end)
        events[#events + 1] = "sending"
        assert.is_true(ch:send("v"))
        events[#events + 1] = "sent"
        sched.join(receiver)
      end,
    })
    assert.are.same({ "sending", "receiving", "v", "sent" }, events)
  end)

  it("hands values over in order, through a buffer, to several receivers", function()
    local got = {}
    run({
      function(sched)
        local ch = sched.channel(3)
        local receivers = {}
        for r = 1, 3 do
          receivers[r] = sched.spawn(function()
            while true do
              local v, err = ch:receive()
              if v == nil then return err end
              got[#got + 1] = v
            end
          end)
        end
        for i = 1, 100 do assert.is_true(ch:send(i)) end
        assert.is_true(ch:close())
        for r = 1, 3 do assert.are.equal("closed", sched.join(receivers[r])) end
      end,
    })
    table.sort(got)
    assert.are.equal(100, #got)
    for i = 1, 100 do assert.are.equal(i, got[i]) end
  end)

  it("a buffered channel takes capacity values without waiting, then waits", function()
    run({
      function(sched)
        local ch = sched.channel(2)
        assert.is_true(ch:send(1))
        assert.is_true(ch:send(false))
        assert.are.same({ nil, "timeout", n = 2 }, pack(sched.timeout(0.05, ch.send, ch, 3)))
        assert.are.equal(1, ch:receive())
        assert.is_false(ch:receive())
        assert.are.same({ nil, "timeout", n = 2 }, pack(sched.timeout(0.05, ch.receive, ch)))
      end,
    })
  end)

  it("closed: receive drains then answers nil, 'closed'; send answers nil, 'closed'; waiters are woken", function()
    run({
      function(sched)
        local ch = sched.channel(1)
        assert.is_true(ch:send("kept"))
        local sender = sched.spawn(function() return pack(ch:send("waiting")) end)
        local empty = sched.channel()
        local receiver = sched.spawn(function() return pack(empty:receive()) end)
        sched.sleep(0.02)
        assert.is_true(ch:close())
        assert.is_true(empty:close())
        assert.are.same({ nil, "closed" }, { ch:close() })
        assert.are.same({ nil, "closed", n = 2 }, sched.join(sender))
        assert.are.same({ nil, "closed", n = 2 }, sched.join(receiver))
        assert.are.equal("kept", ch:receive())
        assert.are.same({ nil, "closed" }, { ch:receive() })
        assert.are.same({ nil, "closed" }, { ch:send(1) })
      end,
    })
  end)

  it("a value sent is never dropped when receivers time out or are cancelled", function()
    local received, sent = {}, 0
    run({
      function(sched)
        local ch = sched.channel()
        local receivers = {}
        for r = 1, 20 do
          receivers[r] = sched.spawn(function()
            while true do
              local v, err = sched.timeout(0.001 * (r % 5), ch.receive, ch)
              if v then received[#received + 1] = v
              elseif err == "closed" then return end
            end
          end)
        end
        local canceller = sched.spawn(function()
          for i = 1, 200 do
            sched.cancel(receivers[i % 20 + 1])
            if i % 10 == 0 then sched.sleep(0.001) end
          end
        end)
        for i = 1, 500 do
          local ok, err = sched.timeout(0.002, ch.send, ch, i)
          if ok then sent = sent + 1 else assert.are.equal("timeout", err) end
          if i % 50 == 0 then sched.sleep(0.001) end
        end
        sched.join(canceller)
        ch:close()
        for r = 1, 20 do sched.join(receivers[r]) end
      end,
    })
    assert.is_true(sent > 0)
    assert.are.equal(sent, #received)
  end)

  it("run reports a deadlock when every task waits on a channel nobody sends on", function()
    local sched = helper.fresh_sched()
    local ch = sched.channel()
    sched.spawn(function() ch:receive() end)
    local ok, err = pcall(sched.run)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("deadlock: 1 task(s) wait on nothing", 1, true), tostring(err))
  end)

  it("checks its arguments", function()
    local sched = helper.fresh_sched()
    assert.has_error(function() sched.channel("x") end, "bad argument #1 to 'channel' (number expected, got string)")
    assert.has_error(function() sched.channel(-1) end, "bad argument #1 to 'channel' (non-negative integer expected)")
    local ch = sched.channel()
    assert.has_error(function() ch:send(nil) end, "bad argument #1 to 'send' (value expected)")
    assert.has_error(function() ch.receive({}) end, "calling 'receive' on bad self (xpio.sched.channel expected, got table)")
    -- each error names the caller's line, as the standard library's do
    for _, bad in ipairs({ function() sched.channel(-1) end, function() sched.channel(1.5) end,
                           function() sched.semaphore(-2) end, function() sched.channel("x") end }) do
      local _, err = pcall(bad)
      assert.truthy(tostring(err):find("^[^:]*sched_sync_spec%.lua:%d+: bad argument #1"), tostring(err))
    end
  end)
end)

describe("sched.semaphore", function()
  it("lets n tasks in at a time, first come first served", function()
    local inside, peak, order = 0, 0, {}
    run({
      function(sched)
        local sem = sched.semaphore(2)
        local tasks = {}
        for i = 1, 6 do
          tasks[i] = sched.spawn(function()
            assert.is_true(sem:acquire())
            order[#order + 1] = i
            inside = inside + 1
            if inside > peak then peak = inside end
            sched.sleep(0.01)
            inside = inside - 1
            assert.is_true(sem:release())
          end)
        end
        for i = 1, 6 do sched.join(tasks[i]) end
        assert.are.equal(2, sem.permits)
      end,
    })
    assert.are.equal(2, peak)
    assert.are.same({ 1, 2, 3, 4, 5, 6 }, order)
  end)

  it("never leaks a permit to a waiter that timed out or was cancelled", function()
    run({
      function(sched)
        local sem = sched.semaphore(1)
        assert.is_true(sem:acquire())
        local timed = sched.spawn(function() return pack(sched.timeout(0.02, sem.acquire, sem)) end)
        local cancelled = sched.spawn(function() return pack(sem:acquire()) end)
        local patient = sched.spawn(function() return pack(sem:acquire()) end)
        sched.sleep(0.05)
        assert.is_true(sched.cancel(cancelled, "stop"))
        assert.are.same({ nil, "timeout", n = 2 }, sched.join(timed))
        assert.are.same({ nil, "stop", n = 2 }, sched.join(cancelled))
        assert.is_true(sem:release())                 -- goes to the patient one
        assert.are.same({ true, n = 1 }, sched.join(patient))
        assert.are.equal(0, sem.permits)
        assert.are.same({ nil, "timeout", n = 2 }, pack(sched.timeout(0.01, sem.acquire, sem)))
      end,
    })
  end)
end)

describe("sched.condition", function()
  it("signal wakes one waiter in order, broadcast wakes them all", function()
    local woke = {}
    run({
      function(sched)
        local cond = sched.condition()
        local tasks = {}
        for i = 1, 4 do
          tasks[i] = sched.spawn(function()
            assert.is_true(cond:wait())
            woke[#woke + 1] = i
          end)
        end
        sched.sleep(0.01)
        assert.is_true(cond:signal())
        sched.sleep(0.01)
        assert.are.same({ 1 }, woke)
        assert.is_true(cond:broadcast())
        for i = 1, 4 do sched.join(tasks[i]) end
        assert.is_true(cond:signal())                 -- nobody waits: nothing happens
      end,
    })
    assert.are.same({ 1, 2, 3, 4 }, woke)
  end)

  it("a timed-out waiter is not woken by a later signal", function()
    run({
      function(sched)
        local cond = sched.condition()
        local timed = sched.spawn(function() return pack(sched.timeout(0.01, cond.wait, cond)) end)
        local waiting = sched.spawn(function() return pack(cond:wait()) end)
        sched.sleep(0.05)
        cond:signal()                                 -- must reach `waiting`
        assert.are.same({ nil, "timeout", n = 2 }, sched.join(timed))
        assert.are.same({ true, n = 1 }, sched.join(waiting))
      end,
    })
  end)
end)

describe("sched.timeout over every wait", function()
  local LIMIT = 0.1

  local function bounded(sched, fn, ...)
    local start = sched.now()
    local results = pack(sched.timeout(LIMIT, fn, ...))
    local elapsed = sched.now() - start
    assert.are.same({ nil, "timeout", n = 2 }, results)
    assert.is_true(elapsed >= LIMIT * 0.9 and elapsed < LIMIT + 2, "took " .. elapsed .. " s")
  end

  it("bounds sleep, join, receive, send, acquire and wait", function()
    run({
      function(sched)
        bounded(sched, sched.sleep, 30)
        local forever = sched.spawn(function() sched.sleep(30) end)
        bounded(sched, sched.join, forever)
        local ch = sched.channel()
        bounded(sched, ch.receive, ch)
        bounded(sched, ch.send, ch, "x")
        bounded(sched, sched.semaphore(0).acquire, sched.semaphore(0))
        local cond = sched.condition()
        bounded(sched, cond.wait, cond)
        assert.is_true(sched.cancel(forever))
        assert.is_nil(sched.join(forever))
      end,
    })
  end)

  it("nests: an inner timeout cannot extend an outer one, and an inner one ends alone", function()
    run({
      function(sched)
        local start = sched.now()
        local r = pack(sched.timeout(0.05, function()
          return sched.timeout(10, sched.sleep, 30)
        end))
        assert.are.same({ nil, "timeout", n = 2 }, r)
        assert.is_true(sched.now() - start < 2)
        -- the inner one fires; the outer scope goes on with its own deadline
        local outer = pack(sched.timeout(5, function()
          local inner = pack(sched.timeout(0.02, sched.sleep, 30))
          return inner[2], sched.sleep(0.05)
        end))
        assert.are.same({ "timeout", true, n = 2 }, outer)
      end,
    })
  end)

  it("a timeout that expired before the wait still ends it", function()
    run({
      function(sched)
        local r = pack(sched.timeout(0.01, function()
          local t0 = sched.now()
          while sched.now() - t0 < 0.03 do end           -- busy past the deadline
          return sched.sleep(30)
        end))
        assert.are.same({ nil, "timeout", n = 2 }, r)
      end,
    })
  end)
end)

describe("sched.cancel", function()
  it("reaches a blocking XPIO call, which returns nil, 'cancelled' with the task off the queue", function()
    local a, b = assert(xpio.socketpair())
    run({
      function(sched)
        local reader = sched.spawn(function()
          local r = pack(a:read(10))
          return r, sched.queue:isEmpty()
        end)
        sched.sleep(0.02)
        assert.is_true(sched.cancel(reader))
        local r, empty = sched.join(reader)
        assert.are.same({ nil, "cancelled", n = 2 }, r)
        assert.is_true(empty)
        assert(b:write("later"))
        assert.are.equal("later", a:read(10))          -- nothing was consumed
      end,
    })
    a:close()
    b:close()
  end)

  it("reaches sleep, join and the new primitives, with its reason", function()
    run({
      function(sched)
        local ch, sem, cond = sched.channel(), sched.semaphore(0), sched.condition()
        local other = sched.spawn(function() sched.sleep(30) end)
        local waits = {
          function() return sched.sleep(30) end,
          function() return sched.join(other) end,
          function() return ch:receive() end,
          function() return ch:send(1) end,
          function() return sem:acquire() end,
          function() return cond:wait() end,
        }
        for i, wait in ipairs(waits) do
          local t = sched.spawn(function() return pack(wait()) end)
          sched.sleep(0.01)
          assert.is_true(sched.cancel(t, "reason " .. i))
          assert.are.same({ nil, "reason " .. i, n = 2 }, sched.join(t))
        end
        sched.cancel(other)
        sched.join(other)
      end,
    })
  end)

  it("is delivered once, at the next wait of a running task, and the task goes on", function()
    run({
      function(sched)
        local me = sched.current()
        assert.is_true(sched.cancel(me, "self"))
        assert.is_true(sched.cancel(me, "twice"))        -- the first reason stays
        assert.are.same({ nil, "self", n = 2 }, pack(sched.sleep(30)))
        assert.are.same({ true, n = 1 }, pack(sched.sleep(0.001)))
      end,
    })
  end)

  it("a task woken with a value keeps it, and the cancellation goes to its next wait", function()
    run({
      function(sched)
        local ch = sched.channel()
        local receiver = sched.spawn(function()
          local v = ch:receive()
          return v, pack(sched.sleep(30))
        end)
        sched.sleep(0.01)
        assert.is_true(ch:send("value"))                -- receiver is runnable now
        assert.is_true(sched.cancel(receiver))
        local v, r = sched.join(receiver)
        assert.are.equal("value", v)
        assert.are.same({ nil, "cancelled", n = 2 }, r)
      end,
    })
  end)

  it("returns false for a finished task", function()
    run({
      function(sched)
        local t = sched.spawn(function() return 1 end)
        assert.are.equal(1, sched.join(t))
        assert.is_false(sched.cancel(t))
      end,
    })
  end)
end)
