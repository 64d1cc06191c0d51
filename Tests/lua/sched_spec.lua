-- Behavioural tests of XPIO's blocking functions under the xpio.sched
-- coroutine scheduler (lua/xpio/sched.lua): spawn, run, sleep, join.
local xpio = require "xpio"
local helper = require "helper"

local open_fds = helper.open_fds

-- The scheduler keeps its state (queue, run list, timers) in the module, so
-- every test loads a fresh copy.
local fresh_sched = helper.fresh_sched

-- Run the scheduler, failing (instead of hanging) when `tasks` are not all
-- done within `limit` seconds.
local function run(sched, tasks, limit)
  helper.run_until(sched, limit, function() return helper.all_done(tasks) end)
end

-- Deterministic bytes covering all 256 values.
local POOL
do
  local bytes, x = {}, 12345
  for i = 1, 140000 do
    x = (x * 1103515245 + 12345) % 2147483648
    bytes[i] = string.char(x % 256)
  end
  POOL = table.concat(bytes)
end

local write_all, read_exactly = helper.write_all, helper.read_exactly

--- A TCP listener on loopback with room for 256 pending connections (100
--- clients connect at once), and its address.
local function listener()
  return helper.listener(nil, nil, 256)
end

describe("xpio.sched", function()
  after_each(function() xpio.setCurrentTask(nil) end)

  it("serves 100 concurrent TCP echo clients exchanging several messages each", function()
    package.loaded["xpio.sched"] = nil
    collectgarbage()
    collectgarbage()
    local fds_before = open_fds()
    local sched = fresh_sched()
    local server, addr = listener()
    local accepted, active, peak = 0, 0, 0
    local sizes = { 1, 17, 1000, 4096, 65537, 300 }
    local acceptor = sched.spawn(function()
      while true do
        local conn, err = server:accept()
        if not conn then return err end
        accepted = accepted + 1
        sched.spawn(function()
          active = active + 1
          if active > peak then peak = active end
          while true do
            local data = conn:read(65536)
            if not data then break end
            write_all(conn, data)
          end
          active = active - 1
          conn:close()
        end)
      end
    end)
    local clients = {}
    for c = 1, 100 do
      clients[c] = sched.spawn(function()
        local s = assert(xpio.socket("TCP"))
        assert(s:connect(addr))
        for m, size in ipairs(sizes) do
          local offset = (c * 7919 + m * 104729) % (#POOL - size) + 1
          local msg = POOL:sub(offset, offset + size - 1)
          write_all(s, msg)
          local back = assert(read_exactly(s, size))
          if back ~= msg then error(("client %d message %d: echo differs"):format(c, m)) end
        end
        s:close()
        return c
      end)
    end
    local coordinator = sched.spawn(function()
      local done = {}
      for c = 1, 100 do done[c] = sched.join(clients[c]) end
      server:close() -- wakes the acceptor, whose accept then fails
      return done, sched.join(acceptor)
    end)
    local all = { acceptor, coordinator }
    for _, t in ipairs(clients) do all[#all + 1] = t end
    run(sched, all, 15)
    local done, acceptor_err = table.unpack(coordinator.results, 1, 2)
    for c = 1, 100 do assert.are.equal(c, done[c]) end
    assert.is_string(acceptor_err)
    assert.are.equal(100, accepted)
    assert.are.equal(0, active)
    assert.is_true(peak > 1, "the echo handlers never ran concurrently")
    -- drop everything, the scheduler (and its queue) included
    server, clients, acceptor, coordinator, all, sched = nil, nil, nil, nil, nil, nil -- luacheck: ignore 311
    package.loaded["xpio.sched"] = nil
    collectgarbage()
    collectgarbage()
    assert.are.equal(fds_before, open_fds())
  end)

  it("blocks a reader until a writer writes", function()
    local sched = fresh_sched()
    local a, b = assert(xpio.socketpair())
    local events = {}
    local t0 = xpio.gettime()
    local reader = sched.spawn(function()
      events[#events + 1] = "read"
      local data = a:read(100)
      events[#events + 1] = "got " .. tostring(data)
      return data, xpio.gettime() - t0
    end)
    local writer = sched.spawn(function()
      sched.sleep(0.05)
      events[#events + 1] = "write"
      return b:write("message")
    end)
    run(sched, { reader, writer }, 5)
    assert.are.same({ "read", "write", "got message" }, events)
    assert.are.equal("message", reader.results[1])
    assert.is_true(reader.results[2] >= 0.049)
    assert.are.equal(7, writer.results[1])
    a:close()
    b:close()
  end)

  it("wakes many readers of one socket one byte at a time, none seeing 'retry'", function()
    local sched = fresh_sched()
    local a, b = assert(xpio.socketpair())
    local readers, got = {}, {}
    for i = 1, 10 do
      readers[i] = sched.spawn(function()
        local data, err = a:read(1)
        got[#got + 1] = data or tostring(err)
      end)
    end
    local writer = sched.spawn(function()
      for i = 0, 9 do
        sched.sleep(0.002)
        assert(b:write(tostring(i)) == 1)
      end
    end)
    readers[#readers + 1] = writer
    run(sched, readers, 5)
    table.sort(got)
    assert.are.same({ "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" }, got)
    a:close()
    b:close()
  end)

  it("accepts connections while they arrive", function()
    local sched = fresh_sched()
    local server, addr = listener()
    local peers, names = {}, {}
    local acceptor = sched.spawn(function()
      for i = 1, 20 do
        local conn = assert(server:accept())
        peers[#peers + 1] = assert(conn:getpeername())
        assert(conn:write("hello " .. i))
        conn:close()
      end
      server:close()
    end)
    local tasks = { acceptor }
    for i = 1, 20 do
      tasks[#tasks + 1] = sched.spawn(function()
        sched.sleep(0.002 * i)
        local s = assert(xpio.socket("TCP"))
        assert(s:connect(addr))
        names[#names + 1] = assert(s:getsockname())
        local greeting = assert(s:read(100))
        assert(greeting:match("^hello %d+$"), greeting)
        assert.is_nil(s:read(100)) -- then end of stream
        s:close()
      end)
    end
    run(sched, tasks, 5)
    assert.are.equal(20, #peers)
    table.sort(peers)
    table.sort(names)
    assert.are.same(names, peers)
  end)

  it("wakes tasks sleeping 0.03, 0.01 and 0.02 s in deadline order", function()
    local sched = fresh_sched()
    local order, late = {}, {}
    local t0 = xpio.gettime()
    local tasks = {}
    for _, d in ipairs({ 0.03, 0.01, 0.02 }) do
      tasks[#tasks + 1] = sched.spawn(function()
        sched.sleep(d)
        local woke = xpio.gettime() - t0
        order[#order + 1] = d
        if woke < d - 0.001 then late[#late + 1] = ("%g woke at %g"):format(d, woke) end
      end)
    end
    run(sched, tasks, 5)
    assert.are.same({ 0.01, 0.02, 0.03 }, order)
    assert.are.same({}, late)
    assert.is_true(xpio.gettime() - t0 < 5)   -- they ended (a bound for a loaded machine)
  end)

  it("lets sleeping and blocked tasks coexist", function()
    local sched = fresh_sched()
    local a, b = assert(xpio.socketpair())
    local events = {}
    local tasks = {
      sched.spawn(function()
        local data = assert(a:read(10))
        events[#events + 1] = "read " .. data
      end),
      sched.spawn(function()
        sched.sleep(0.02)
        events[#events + 1] = "slept"
      end),
      sched.spawn(function()
        sched.sleep(0.04)
        assert(b:write("late"))
      end),
    }
    run(sched, tasks, 5)
    assert.are.same({ "slept", "read late" }, events)
    a:close()
    b:close()
  end)

  it("join returns a task's results, holes included, to every joiner", function()
    local sched = fresh_sched()
    local worker = sched.spawn(function(x, y)
      sched.sleep(0.01)
      return x + y, nil, "z"
    end, 1, 2)
    local seen = {}
    local joiners = {}
    for i = 1, 3 do
      joiners[i] = sched.spawn(function()
        seen[i] = table.pack(sched.join(worker))
      end)
    end
    local late = sched.spawn(function()
      sched.sleep(0.03)
      return table.pack(sched.join(worker)) -- already finished
    end)
    joiners[#joiners + 1] = late
    joiners[#joiners + 1] = worker
    run(sched, joiners, 5)
    for i = 1, 3 do assert.are.same({ 3, nil, "z", n = 3 }, seen[i]) end
    assert.are.same({ 3, nil, "z", n = 3 }, late.results[1])
  end)

  it("join re-raises the error of the task it joins", function()
    local sched = fresh_sched()
    local failing = sched.spawn(function()
      sched.sleep(0.01)
      error("boom from the task")
    end)
    local outcome = {}
    local joiner = sched.spawn(function()
      local ok, err = pcall(sched.join, failing)
      outcome.ok, outcome.err = ok, err
      ok, err = pcall(sched.join, failing) -- again, once finished
      outcome.ok2, outcome.err2 = ok, err
    end)
    run(sched, { failing, joiner }, 5)
    assert.is_false(outcome.ok)
    assert.is_truthy(tostring(outcome.err):find("boom from the task", 1, true))
    assert.is_false(outcome.ok2)
    assert.is_truthy(tostring(outcome.err2):find("boom from the task", 1, true))
  end)

  it("in strict mode, raises from run the error of a task nobody joins", function()
    local sched = fresh_sched()            -- strict: sched.onerror(sched.raise)
    sched.spawn(function()
      sched.sleep(0.01)
      error("unjoined failure")
    end)
    local ok, err = pcall(sched.run)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("unjoined failure", 1, true))
  end)

  it("in strict mode, keeps the other tasks after raising an unjoined error, and a later run goes on with them", function()
    local sched = fresh_sched()
    local ran = false
    sched.spawn(function() error("first fails") end)
    sched.spawn(function() ran = true end)
    local ok, err = pcall(sched.run)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("first fails", 1, true))
    assert.is_false(ran)
    assert.is_true(pcall(sched.run))
    assert.is_true(ran)
  end)

  it("keeps running the other tasks when a task dies while still scheduled on the queue", function()
    -- a task calls a when_ function itself, then fails before yielding: the
    -- queue still returns it later; the scheduler must not resume the dead
    -- coroutine (nor count it as finished twice)
    local sched = fresh_sched()
    local a, b = assert(xpio.socketpair())
    local dying = sched.spawn(function()
      sched.sleep(0.01)
      assert(a:when_read(sched.current()))
      error("dies while scheduled")
    end)
    local outcome = {}
    local other = sched.spawn(function()
      local ok, err = pcall(sched.join, dying)
      outcome.ok, outcome.err = ok, err
      assert(b:write("x")) -- makes the dead task's socket readable
      sched.sleep(0.05)
      outcome.finished = true
    end)
    local ok, err = pcall(run, sched, { dying, other }, 5)
    assert.is_true(ok, tostring(err))
    assert.is_false(outcome.ok)
    assert.is_truthy(tostring(outcome.err):find("dies while scheduled", 1, true))
    assert.is_true(outcome.finished)
    a:close()
    b:close()
  end)

  it("sets the current task while a task runs, and passes spawn's arguments", function()
    local sched = fresh_sched()
    local seen = {}
    local task
    task = sched.spawn(function(...)
      seen.current = sched.current() == task
      seen.xpio_current = xpio.getCurrentTask() == task
      sched.sleep(0)
      seen.after_sleep = sched.current() == task and xpio.getCurrentTask() == task
      return select("#", ...), ...
    end, "a", nil, nil)
    run(sched, { task }, 5)
    assert.is_nil(sched.current())
    assert.is_nil(xpio.getCurrentTask())
    assert.are.same({ current = true, xpio_current = true, after_sleep = true }, seen)
    assert.are.same({ 3, "a", nil, nil, n = 4 }, task.results)
  end)

  it("wakes a task blocked on a socket that another task closes", function()
    local sched = fresh_sched()
    local a, b = assert(xpio.socketpair())
    local reader = sched.spawn(function() return table.pack(a:read(10)) end)
    local closer = sched.spawn(function()
      sched.sleep(0.02)
      return a:close()
    end)
    run(sched, { reader, closer }, 5)
    local res = reader.results[1]
    assert.is_nil(res[1])
    assert.is_string(res[2])
    assert.is_true(closer.results[1])
    b:close()
  end)

  it("runs 1000 blocked readers beside a busy pair, then ends them by closing their peers", function()
    package.loaded["xpio.sched"] = nil
    collectgarbage()
    collectgarbage()
    local fds_before = open_fds()
    local sched = fresh_sched()
    local peers, tasks, ends = {}, {}, 0
    for i = 1, 1000 do
      local x, y = assert(xpio.socketpair())
      peers[i] = y
      tasks[i] = sched.spawn(function()
        local data, err = x:read(10)
        assert(data == nil and err == nil, "expected end of stream")
        ends = ends + 1
        x:close()
      end)
    end
    local pa, pb = assert(xpio.socketpair())
    local rounds = 2000
    local elapsed
    local ping = sched.spawn(function()
      local t0 = xpio.gettime()
      for i = 1, rounds do
        assert(pa:write(i))
        assert(assert(pa:read(100)) == tostring(i))
      end
      elapsed = xpio.gettime() - t0
      assert(pa:write("bye"))
      for _, y in ipairs(peers) do y:close() end
    end)
    local pong = sched.spawn(function()
      while true do
        local data = assert(pb:read(100))
        if data == "bye" then break end
        assert(pb:write(data))
      end
    end)
    tasks[#tasks + 1] = ping
    tasks[#tasks + 1] = pong
    run(sched, tasks, 15)
    assert.are.equal(1000, ends)
    assert.is_true(elapsed < 10, ("%d round trips took %.2f s"):format(rounds, elapsed))
    pa:close()
    pb:close()
    peers, tasks, ping, pong, sched = nil, nil, nil, nil, nil -- luacheck: ignore 311
    package.loaded["xpio.sched"] = nil
    collectgarbage()
    collectgarbage()
    assert.are.equal(fds_before, open_fds())
  end)
end)
