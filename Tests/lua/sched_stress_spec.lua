-- 10 000 random cancellations and timeouts (issue 21) across sleeps,
-- joins, channels, semaphores, conditions and socket waits: afterwards no
-- task is left queued or timed, no descriptor is leaked, no permit is
-- leaked, and every value and byte sent arrived exactly once.
-- XPIO_STRESS_SEED repeats a run.
local xpio = require "xpio"
local helper = require "helper"

local TARGET = 10000          -- cancellations + timeouts delivered
local WORKERS = 40

describe("xpio.sched under random cancellations and timeouts", function()
  it(("delivers %d of them and loses nothing"):format(TARGET), function()
    local seed = tonumber(os.getenv("XPIO_STRESS_SEED")) or os.time()
    math.randomseed(seed)
    package.loaded["xpio.sched"] = nil
    collectgarbage()
    collectgarbage()
    local fds = helper.open_fds()
    local sched = helper.fresh_sched()
    local ch = sched.channel(2)
    local unbuffered = sched.channel()
    local PERMITS = 3
    local sem = sched.semaphore(PERMITS)
    local cond = sched.condition()
    local pairs_ = {}
    for i = 1, 4 do pairs_[i] = { assert(xpio.socketpair()) } end
    local stats = { interrupted = 0, sent = 0, received = 0, wrote = 0, read = 0, ops = 0 }
    local received_values = {}
    local done = false

    -- one random wait; returns nil, reason when a timeout or cancel ended it
    local ops = {
      function() return sched.sleep(math.random() * 0.003) end,
      function()
        local v = { stats.sent }
        local ok, err = ch:send(v)
        if ok then stats.sent = stats.sent + 1 end
        return ok, err
      end,
      function()
        local v, err = ch:receive()
        if v then
          stats.received = stats.received + 1
          assert(not received_values[v], "a value received twice")
          received_values[v] = true
        end
        return v, err
      end,
      function()
        local ok, err = unbuffered:send(true)
        if ok then stats.sent = stats.sent + 1 end
        return ok, err
      end,
      function()
        local v, err = unbuffered:receive()
        if v then stats.received = stats.received + 1 end
        return v, err
      end,
      function()
        local ok, err = sem:acquire()
        if not ok then return ok, err end
        sched.sleep(0)                        -- hold it across a wait (maybe interrupted: still held)
        assert(sem:release())
        return true
      end,
      function()
        if math.random() < 0.3 then cond:signal() end
        return cond:wait()
      end,
      function()
        local p = pairs_[math.random(#pairs_)]
        local data, err = p[1]:read(100)
        if data then stats.read = stats.read + #data end
        return data, err
      end,
      function()
        local p = pairs_[math.random(#pairs_)]
        local n, err, partial = p[2]:write(string.rep("x", math.random(1, 300)))
        stats.wrote = stats.wrote + (n or partial or 0)
        return n, err
      end,
    }

    local function worker()
      while not done do
        local op = ops[math.random(#ops)]
        local a, b
        if math.random() < 0.5 then
          a, b = sched.timeout(math.random() * 0.004, op)
        else
          a, b = op()
        end
        stats.ops = stats.ops + 1
        if a == nil and (b == "timeout" or b == "cancelled") then
          stats.interrupted = stats.interrupted + 1
          if stats.interrupted >= TARGET then done = true end
        end
      end
    end

    local workers = {}
    for w = 1, WORKERS do workers[w] = sched.spawn(worker) end
    local chaos = sched.spawn(function()
      while not done do
        sched.cancel(workers[math.random(WORKERS)])
        if math.random() < 0.2 then cond:broadcast() end
        sched.sleep(math.random() * 0.001)
      end
      -- wake whoever still waits where only another worker could wake it
      for _ = 1, 3 do
        for w = 1, WORKERS do sched.cancel(workers[w], "stop") end
        sched.sleep(0.01)
      end
    end)
    local all = { chaos }
    for w = 1, WORKERS do all[#all + 1] = workers[w] end
    helper.run_until(sched, 120, function() return helper.all_done(all) end)

    -- drain what is left and compare
    helper.run_tasks(sched, 10, { function()
      while true do
        local v = sched.timeout(0, ch.receive, ch)
        if not v then break end
        stats.received = stats.received + 1
      end
      for _, p in ipairs(pairs_) do
        while true do
          local data = p[1]:try_read(65536)
          if not data then break end
          stats.read = stats.read + #data
        end
      end
    end })
    local context = ("seed %d: %s"):format(seed, (function()
      local t = {}
      for k, v in pairs(stats) do t[#t + 1] = k .. "=" .. v end
      table.sort(t)
      return table.concat(t, " ")
    end)())
    assert.is_true(stats.interrupted >= TARGET, context)
    if os.getenv("XPIO_STRESS_VERBOSE") then print(context) end
    assert.are.equal(stats.sent, stats.received, context)
    assert.are.equal(stats.wrote, stats.read, context)
    assert.are.equal(PERMITS, sem.permits, context)
    assert.is_true(sched.queue:isEmpty(), "a task is still queued; " .. context)
    assert.is_nil(sched.deadline(), "a timer is left; " .. context)
    for _, p in ipairs(pairs_) do
      p[1]:close()
      p[2]:close()
    end
    sched, workers, all, chaos = nil, nil, nil, nil -- luacheck: ignore 311
    package.loaded["xpio.sched"] = nil
    collectgarbage()
    collectgarbage()
    assert.are.equal(fds, helper.open_fds(), context)
  end)
end)
