-- One socket, many tasks (issue 21): concurrent blocking writes on one
-- socket never interleave and concurrent blocking reads are served one at
-- a time in call order; a blocking call that would wait in a coroutine
-- that is not the task's raises; socket:lines is the safe line iterator.
-- Contract: Sources/CLua/blocking.c (header), Spec/socket.spec.
local xpio = require "xpio"
local helper = require "helper"

local function run(limit, fns)
  local sched = helper.fresh_sched()
  local list = {}
  for i, fn in ipairs(fns) do list[i] = function() return fn(sched) end end
  helper.run_tasks(sched, limit, list)
  return sched
end

describe("one socket, many tasks", function()
  it("keeps concurrent 1 MiB writes contiguous and in call order", function()
    local l, addr = helper.listener()
    local a = assert(xpio.socket("TCP"))
    assert(a:setsockopt("SO_SNDBUF", 4096))          -- many waits per write
    local WRITERS, SIZE = 4, 1 << 20
    local received
    run(60, { function(sched)
      local connecting = sched.spawn(function() return a:connect(addr) end)
      local b = assert(l:accept())
      assert(sched.join(connecting))
      local writers = {}
      for w = 1, WRITERS do
        writers[w] = sched.spawn(function()
          sched.sleep(0.001 * w)                      -- each starts while the others wait
          return a:write(string.rep(string.char(64 + w), SIZE))
        end)
      end
      local reader = sched.spawn(function()
        local chunks, total = {}, 0
        while total < WRITERS * SIZE do
          local data = assert(b:read(1000 + total % 7000))
          chunks[#chunks + 1] = data
          total = total + #data
        end
        b:close()
        return table.concat(chunks)
      end)
      for w = 1, WRITERS do assert.are.equal(SIZE, sched.join(writers[w])) end
      received = sched.join(reader)
    end })
    assert.are.equal(WRITERS * SIZE, #received)
    -- one run per writer, in the order the writes were called
    local runs, at = {}, 1
    while at <= #received do
      local byte = received:sub(at, at)
      local stop = (received:find("[^" .. byte .. "]", at) or #received + 1)
      runs[#runs + 1] = byte .. (stop - at)
      at = stop
    end
    local expected = {}
    for w = 1, WRITERS do expected[w] = string.char(64 + w) .. SIZE end
    assert.are.same(expected, runs)
    a:close()
    l:close()
  end)

  it("tasks writing again and again in turn: every write whole, each task's in order, the line kept short", function()
    local a, b = assert(xpio.socketpair())
    assert(a:setsockopt("SO_SNDBUF", 4096))          -- the line never empties
    local WRITERS, WRITES, SIZE = 3, 200, 3000
    local received, longest = nil, 0
    run(60, { function(sched)
      local writers = {}
      for w = 1, WRITERS do
        writers[w] = sched.spawn(function()
          for k = 1, WRITES do
            local mark = ("%s%04d"):format(string.char(64 + w), k)
            assert(a:write(string.rep(mark, SIZE // #mark)))
            -- a's turns FIFO (its user value: the writes' line at the even
            -- places): the highest place of the writes' line
            local fifo = debug.getuservalue(a, 1)
            for index in pairs(fifo or {}) do
              if index % 2 == 0 then longest = math.max(longest, index // 2) end
            end
          end
        end)
      end
      local reader = sched.spawn(function()
        local chunks, total = {}, 0
        while total < WRITERS * WRITES * SIZE do
          local data = assert(b:read(1000 + total % 3000))
          chunks[#chunks + 1] = data
          total = total + #data
        end
        return table.concat(chunks)
      end)
      for w = 1, WRITERS do sched.join(writers[w]) end
      received = sched.join(reader)
    end })
    assert.are.equal(WRITERS * WRITES * SIZE, #received)
    local next_of = { 1, 1, 1 }
    for at = 1, #received, SIZE do
      local chunk = received:sub(at, at + SIZE - 1)
      local mark = chunk:sub(1, 5)
      assert.are.equal(string.rep(mark, SIZE // 5), chunk, "a write was interleaved at byte " .. at)
      local w, k = mark:byte(1) - 64, tonumber(mark:sub(2))
      assert.are.equal(next_of[w], k, "writer " .. w .. "'s writes out of order")
      next_of[w] = k + 1
    end
    assert.are.same({ WRITES + 1, WRITES + 1, WRITES + 1 }, next_of)
    -- 600 writes passed through the line: without its places reused, the
    -- FIFO would reach place 600
    assert.is_true(longest <= 2 * WRITERS, "the line's FIFO reached place " .. longest)
    a:close()
    b:close()
  end)

  it("a task blocked in readline holds under 1 900 bytes of Lua heap: its coroutine keeps Lua's first stack", function()
    -- The deepest frame of a waiting readline is the blocking function's
    -- own (Sources/CLua/blocking.c), where xpio_wait_with stores the task:
    -- a C function, which Lua gives 20 free slots. Needing more there grows
    -- every waiting coroutine's stack from 40 to 80 slots: about 1 600
    -- bytes become 2 250 per connection a server holds.
    local sched = helper.fresh_sched()
    local N = 500
    local ends = {}
    for i = 1, N do ends[i] = { assert(xpio.socketpair()) } end
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    local got = 0
    for i = 1, N do
      sched.spawn(function()
        if ends[i][1]:readline() == "x" then got = got + 1 end
      end)
    end
    sched.step(0)
    collectgarbage()
    collectgarbage()
    local per_task = (collectgarbage("count") - before) * 1024 / N
    for i = 1, N do assert(ends[i][2]:write("x\n")) end
    sched.run()
    for i = 1, N do
      ends[i][1]:close()
      ends[i][2]:close()
    end
    assert.are.equal(N, got)
    assert.is_true(per_task < 1900, ("%.0f bytes of Lua heap per waiting task"):format(per_task))
  end)

  it("serves concurrent reads one at a time, in call order", function()
    local a, b = assert(xpio.socketpair())
    local got = {}
    run(20, { function(sched)
      local readers = {}
      for r = 1, 3 do
        readers[r] = sched.spawn(function() got[r] = a:readexactly(5) end)
        sched.sleep(0.01)                     -- the calls are made in this order
      end
      for _, ch in ipairs({ "a", "b", "c" }) do
        for _ = 1, 5 do                        -- a byte at a time: every reader is woken each time
          assert(b:write(ch))
          sched.sleep(0.002)
        end
      end
      for r = 1, 3 do sched.join(readers[r]) end
    end })
    assert.are.same({ "aaaaa", "bbbbb", "ccccc" }, got)
    a:close()
    b:close()
  end)

  it("hands the turn on with lines the socket already holds", function()
    local a, b = assert(xpio.socketpair())
    local got = {}
    run(20, { function(sched)
      local readers = {}
      for r = 1, 3 do
        readers[r] = sched.spawn(function() got[r] = a:readline() end)
        sched.sleep(0.01)
      end
      assert(b:write("one\ntwo\nthree\n"))   -- one segment: the first readline keeps the rest
      for r = 1, 3 do sched.join(readers[r]) end
    end })
    assert.are.same({ "one", "two", "three" }, got)
    a:close()
    b:close()
  end)

  it("a waiter that times out or is cancelled leaves the line; the others keep their order", function()
    local a, b = assert(xpio.socketpair())
    local got = {}
    local sched = run(20, { function(sched)
      local first = sched.spawn(function() got[1] = { a:readline() } end)
      sched.sleep(0.01)
      local timed = sched.spawn(function() got[2] = { sched.timeout(0.05, a.readline, a) } end)
      sched.sleep(0.01)
      local cancelled = sched.spawn(function() got[3] = { a:readline() } end)
      sched.sleep(0.01)
      local last = sched.spawn(function() got[4] = { a:readline() } end)
      sched.sleep(0.1)
      assert.is_true(sched.cancel(cancelled))
      assert(b:write("x\ny\n"))
      for _, t in ipairs({ first, timed, cancelled, last }) do sched.join(t) end
    end })
    assert.are.same({ { "x" }, { nil, "timeout" }, { nil, "cancelled" }, { "y" } }, got)
    assert.is_true(sched.queue:isEmpty())
    a:close()
    b:close()
  end)

  it("a blocking call from a coroutine that is not the task's raises, naming it, with nothing lost", function()
    local a, b = assert(xpio.socketpair())
    local outcome = {}
    local sched = run(20, { function(sched)
      local iterator = coroutine.wrap(function()
        while true do coroutine.yield(a:read(10)) end
      end)
      local ok, err = pcall(iterator)
      outcome.ok, outcome.err = ok, err
      outcome.empty = sched.queue:isEmpty()
      outcome.dequeue = sched.current()._dequeue
      sched.spawn(function() sched.sleep(0.01) assert(b:write("kept")) end)
      outcome.later = a:read(10)              -- the task itself can still read
    end })
    assert.is_false(outcome.ok)
    assert.truthy(tostring(outcome.err):find("xpio: read would wait in a coroutine that is not the current task's",
      1, true), tostring(outcome.err))
    assert.is_true(outcome.empty)
    assert.is_nil(outcome.dequeue)
    assert.are.equal("kept", outcome.later)
    assert.is_true(sched.queue:isEmpty())
    a:close()
    b:close()
  end)

  it("a blocking read from such a coroutine answers at once when the bytes are there, even after a short read", function()
    local a, b = assert(xpio.socketpair())
    local got = {}
    run(20, { function()
      assert(b:write("x\n"))
      got[1] = a:readline()                  -- a short read: the next blocking read would wait first
      assert(b:write("w\n"))
      got[2] = { pcall(coroutine.wrap(function() return a:readline() end)) }
    end })
    assert.are.equal("x", got[1])
    assert.are.same({ true, "w" }, got[2])
    a:close()
    b:close()
  end)

  it("wakes each task in a long line about once, not at every event", function()
    -- N tasks read one byte each from one socket, in turn; a write of N
    -- bytes serves them all. Counted: how many times the queue returns a
    -- task (with every task in line woken at each event, N^2/2).
    local N = 400
    local q = xpio.tqueue()
    local a, b = assert(xpio.socketpair())
    local got = {}
    for i = 1, N do
      local task = { _queue = q }
      task.co = coroutine.create(function() got[i] = a:read(1) end)
      task._thread = task.co
      xpio.setCurrentTask(task)
      assert(coroutine.resume(task.co))
    end
    xpio.setCurrentTask(nil)
    assert(b:write(string.rep("x", N)))
    local returned, finished = 0, 0
    while finished < N do
      local ready = assert(q:wait(5))
      assert.is_true(#ready > 0, "no task came back")
      for _, task in ipairs(ready) do
        returned = returned + 1
        xpio.setCurrentTask(task)
        assert(coroutine.resume(task.co))
        if coroutine.status(task.co) == "dead" then finished = finished + 1 end
      end
      xpio.setCurrentTask(nil)
    end
    for i = 1, N do assert.are.equal("x", got[i]) end
    assert.is_true(returned <= 3 * N, returned .. " returns for " .. N .. " tasks")
    a:close()
    b:close()
  end)

  it("a write that sent part of its data before it found it cannot wait says how much, rather than raise", function()
    local a, b = assert(xpio.socketpair())
    local big = string.rep("x", 1 << 24)
    local nested
    run(20, { function()
      nested = { pcall(coroutine.wrap(function() return b:write(big) end)) }
    end })
    assert.is_true(nested[1])
    assert.is_nil(nested[2])
    assert.truthy(tostring(nested[3]):find("xpio: write would wait in a coroutine that is not the current task's", 1, true))
    assert.is_true(nested[4] > 0 and nested[4] < #big, tostring(nested[4]))
    assert.are.equal(nested[4], helper.drain(a))
    -- outside any coroutine the same, and nothing written: the usual error
    local sent, err, count = b:write(big)
    assert.is_nil(sent)
    assert.truthy(tostring(err):find("xpio: write must be called from a coroutine", 1, true), tostring(err))
    assert.are.equal(count, helper.drain(a))
    assert(helper.fill(b) > 0)
    assert.has_error(function() b:write("more") end,
      "xpio: write must be called from a coroutine (use try_write outside one)")
    a:close()
    b:close()
  end)

  it("the scheduler's own waits from such a coroutine raise too, and the task's waits stay whole", function()
    local outcome = {}
    run(20, { function(sched)
      local ch = sched.channel()
      outcome.receive = { pcall(coroutine.wrap(function() return ch:receive() end)) }
      outcome.sleep = { pcall(coroutine.wrap(function() return sched.sleep(0.01) end)) }
      sched.spawn(function() assert(ch:send("value")) end)
      local t0 = xpio.gettime()
      outcome.slept = sched.sleep(0.05)
      outcome.elapsed = xpio.gettime() - t0
      outcome.received = ch:receive()
    end })
    assert.is_false(outcome.receive[1])
    assert.truthy(tostring(outcome.receive[2]):find(
      "xpio.sched: receive would wait in a coroutine that is not the task's own", 1, true), tostring(outcome.receive[2]))
    assert.is_false(outcome.sleep[1])
    assert.truthy(tostring(outcome.sleep[2]):find("xpio.sched: sleep would wait", 1, true), tostring(outcome.sleep[2]))
    assert.is_true(outcome.slept)
    assert.is_true(outcome.elapsed >= 0.045, tostring(outcome.elapsed))
    assert.are.equal("value", outcome.received)
  end)
end)

describe("socket:lines", function()
  it("iterates the lines, the unterminated last one too, waiting as readline does", function()
    local a, b = assert(xpio.socketpair())
    local lines, kept = {}, {}
    run(20, { function(sched)
      sched.spawn(function()
        for _, part in ipairs({ "one\r\ntw", "o\n", "", "three\nfour" }) do
          sched.sleep(0.01)
          if #part > 0 then assert(b:write(part)) end
        end
        b:close()
      end)
      for line in a:lines() do lines[#lines + 1] = line end
    end })
    assert.are.same({ "one", "two", "three", "four" }, lines)
    a:close()
    local c, d = assert(xpio.socketpair())
    run(20, { function()
      assert(d:write("x\r\ny\n"))
      d:close()
      for line in c:lines(true) do kept[#kept + 1] = line end
    end })
    assert.are.same({ "x\r\n", "y\n" }, kept)
    c:close()
  end)

  it("raises readline's error, so a timeout reaches a for loop", function()
    local a, b = assert(xpio.socketpair())
    local ok, err
    run(20, { function(sched)
      ok, err = pcall(sched.timeout, 0.05, function()
        for _ in a:lines() do end
      end)
    end })
    assert.is_false(ok)
    assert.are.equal("timeout", err)
    a:close()
    b:close()
  end)

  it("checks its argument", function()
    local a, b = assert(xpio.socketpair())
    local ok, err = pcall(function() return a:lines("yes") end)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to 'lines' (boolean expected, got string)", 1, true), err)
    a:close()
    b:close()
  end)
end)
