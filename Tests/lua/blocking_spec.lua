-- Behavioural tests of XPIO's blocking functions (read, write, accept,
-- connect, process:wait), driven by hand with coroutine.create/resume,
-- xpio.setCurrentTask and tqueue:wait: no scheduler involved.
local xpio = require "xpio"
local helper = require "helper"

local fill, drain = helper.fill, helper.drain
local contains = helper.contains
local listener = helper.listener
local closed_address = helper.unused_address
local wait_for = helper.wait_for

-- Start `fn` in a coroutine with `task` as the current task; returns the
-- coroutine and what the first resume returned (packed).
local function start(task, fn, ...)
  local co = coroutine.create(fn)
  xpio.setCurrentTask(task)
  local res = table.pack(coroutine.resume(co, ...))
  xpio.setCurrentTask(nil)
  return co, res
end

local function resume(task, co, ...)
  xpio.setCurrentTask(task)
  local res = table.pack(coroutine.resume(co, ...))
  xpio.setCurrentTask(nil)
  return res
end

-- Drive a coroutine started with `start` to its end: each time it yields,
-- its task must be scheduled; wait for the queue to return it and resume.
local function finish(q, task, co, res)
  while coroutine.status(co) == "suspended" do
    assert(res[1], res[2])
    assert.is_function(task._dequeue, "a blocking call yielded without scheduling its task")
    wait_for(q, task, 5)
    res = resume(task, co)
  end
  return res
end

after_each(function() xpio.setCurrentTask(nil) end)

describe("blocking functions outside a coroutine", function()
  it("raise an error naming the function when they would block", function()
    local a, b = assert(xpio.socketpair())
    local ok, err = pcall(a.read, a, 10)
    assert.is_false(ok)
    assert.matches("read", err)
    fill(a)
    ok, err = pcall(a.write, a, "x")
    assert.is_false(ok)
    assert.matches("write", err)
    local l, addr = listener()
    ok, err = pcall(l.accept, l)
    assert.is_false(ok)
    assert.matches("accept", err)
    local c = assert(xpio.socket("TCP"))
    ok, err = pcall(c.connect, c, addr)
    assert.is_false(ok)
    assert.matches("connect", err)
    for _, s in ipairs({ a, b, l, c }) do s:close() end
  end)

  it("raise an error naming process:wait while the child runs", function()
    local p = assert(xpio.spawn({ "sleep", "5" }, xpio.env))
    local ok, err = pcall(p.wait, p)
    assert.is_false(ok)
    assert.matches("wait", err)
    assert.is_true(p:kill())
    local q = xpio.tqueue()
    local task = { _queue = q }
    assert.is_true(p:when_wait(task))
    wait_for(q, task, 5)
    local how, code = p:try_wait()
    assert.are.equal("signal", how)
    assert.are.equal(9, code)
  end)

  it("answer at once, without a coroutine, when they need not wait", function()
    -- they try first: read(0) is "" "never an error", data already there is
    -- returned, a known exit status comes again
    local a, b = assert(xpio.socketpair())
    assert.are.equal("", a:read(0))
    b:try_write("ready")
    assert.are.equal("ready", a:read(10))
    assert.are.equal(1, b:write("x"))
    assert.are.equal("x", a:read(10))
    b:close()
    assert.is_nil(a:read(10)) -- end of stream
    a:close()
    local ok, err = a:read(10)
    assert.is_nil(ok)
    assert.are.equal("xpio: socket is closed", err)
    local p = assert(xpio.spawn({ "true" }, xpio.env))
    local q = xpio.tqueue()
    local task = { _queue = q }
    assert.is_true(p:when_wait(task))
    wait_for(q, task, 5)
    assert.are.same({ "exit", 0 }, { p:try_wait() })
    assert.are.same({ "exit", 0 }, { p:wait() })
  end)
end)

describe("blocking functions in a coroutine with no current task", function()
  it("raise 'needs a current task' when they would block", function()
    assert.is_nil(xpio.getCurrentTask())
    local a, b = assert(xpio.socketpair())
    local full, other = assert(xpio.socketpair())
    fill(full)
    local l = listener()
    local l2, addr = listener() -- connect's target: accept must find nothing pending
    local c = assert(xpio.socket("TCP"))
    local p = assert(xpio.spawn({ "sleep", "5" }, xpio.env))
    local cases = {
      read = function() return a:read(10) end,
      write = function() return full:write("x") end,
      accept = function() return l:accept() end,
      connect = function() return c:connect(addr) end,
      wait = function() return p:wait() end,
    }
    for name, fn in pairs(cases) do
      local co = coroutine.create(fn)
      local ok, err = coroutine.resume(co)
      assert.is_false(ok, name .. " did not raise")
      assert.matches("needs a current task", err)
      assert.matches(name, err)
    end
    p:kill()
    for _, s in ipairs({ a, b, full, other, l, l2, c }) do s:close() end
  end)

  it("complete without a current task when they need not wait", function()
    local a, b = assert(xpio.socketpair())
    b:try_write("ready")
    local co = coroutine.create(function() return a:read(10), a:read(0) end)
    assert.are.same({ true, "ready", "" }, { coroutine.resume(co) })
    a:close()
    b:close()
  end)

  it("raise naming the function when the current task has no tqueue", function()
    local a, b = assert(xpio.socketpair())
    xpio.setCurrentTask({})
    local co = coroutine.create(function() return a:read(10) end)
    local ok, err = coroutine.resume(co)
    xpio.setCurrentTask(nil)
    assert.is_false(ok)
    assert.matches("xpio: read: the current task's _queue is not a tqueue", err, 1, true)
    a:close()
    b:close()
  end)
end)

describe("blocking functions with a current task", function()
  it("do not yield when data is already available", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    b:try_write("hello")
    local co, res = start(task, function() return a:read(100) end)
    assert.are.equal("dead", coroutine.status(co))
    assert.is_true(res[1])
    assert.are.equal("hello", res[2])
    assert.is_nil(task._dequeue)
    assert.is_true(q:isEmpty())
    a:close()
    b:close()
  end)

  it("do not yield for a write that can be done at once, nor for read(0)", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    local co, res = start(task, function() return a:write("hello") end)
    assert.are.equal("dead", coroutine.status(co))
    assert.are.same({ true, 5, n = 2 }, res)
    co, res = start(task, function() return b:read(0) end)
    assert.are.equal("dead", coroutine.status(co))
    assert.are.same({ true, "", n = 2 }, res)
    assert.is_true(q:isEmpty())
    a:close()
    b:close()
  end)

  it("write all of a large string, waiting as often as they must", function()
    local q = xpio.tqueue()
    local writer, reader = { _queue = q }, { _queue = q }
    local a, b = assert(xpio.socketpair())
    local big = string.rep("0123456789abcdef", 512 * 1024) -- 8 MiB, far more than the buffers hold
    local wrote, chunks = nil, {}
    local function take_all()
      for data in function() return (b:try_read(65536)) end do chunks[#chunks + 1] = data end
    end
    local cw = coroutine.wrap(function()
      xpio.setCurrentTask(writer)
      wrote = a:write(big)
    end)
    local yields = 0
    cw()
    while not wrote do
      yields = yields + 1
      take_all() -- the reader drains what is there, then the writer goes on
      if not reader._dequeue then assert.is_true(b:when_read(reader)) end
      local ready = assert(q:wait(5))
      assert.is_true(#ready > 0, "the writer never became ready")
      for _, t in ipairs(ready) do
        if t == writer then xpio.setCurrentTask(writer); cw() end
      end
    end
    if reader._dequeue then reader:_dequeue() end
    xpio.setCurrentTask(nil)
    a:close()
    take_all()
    assert.are.equal(#big, wrote)
    assert.is_true(yields > 0, "an 8 MiB write did not have to wait")
    local got = table.concat(chunks)
    assert.are.equal(#big, #got)
    assert.is_true(got == big, "the bytes came out changed")
    b:close()
  end)

  it("return nil, message and the count written when the reader goes away mid-write", function()
    local q = xpio.tqueue()
    local writer = { _queue = q }
    local a, b = assert(xpio.socketpair())
    local big = string.rep("z", 8 * 1024 * 1024)
    local res
    local co = coroutine.create(function()
      xpio.setCurrentTask(writer)
      res = table.pack(a:write(big))
    end)
    assert(coroutine.resume(co))
    assert.is_nil(res, "an 8 MiB write finished without a reader")
    b:close()
    local ready = q:wait(5)
    assert.are.equal(writer, ready[1])
    assert(coroutine.resume(co))
    xpio.setCurrentTask(nil)
    assert.is_nil(res[1])
    assert.is_string(res[2])
    assert.is_true(res[3] > 0 and res[3] < #big)
    a:close()
  end)

  it("do not yield at end of stream or on a closed socket", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    b:close()
    local co, res = start(task, function() return a:read(10) end)
    assert.are.equal("dead", coroutine.status(co))
    assert.are.same({ true, nil, n = 2 }, res)
    a:close()
    co, res = start(task, function() return a:read(10) end)
    assert.are.equal("dead", coroutine.status(co))
    assert.is_true(res[1])
    assert.is_nil(res[2])
    assert.is_string(res[3])
    assert.is_true(q:isEmpty())
  end)

  it("do not yield to accept a connection that is already pending", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local l, addr = listener()
    local c = assert(xpio.socket("TCP"))
    c:try_connect(addr)
    local probe = { _queue = q }
    l:when_read(probe)
    wait_for(q, probe)
    local co, res = start(task, function() return l:accept() end)
    assert.are.equal("dead", coroutine.status(co))
    assert.is_true(res[1])
    local conn = res[2]
    assert.are.equal("userdata", type(conn))
    assert.is_true(q:isEmpty())
    conn:close()
    c:close()
    l:close()
  end)

  it("read: schedule the current task and yield; resuming after the queue returns it completes the call", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    local co, res = start(task, function() return a:read(100) end)
    assert.is_true(res[1])
    assert.are.equal("suspended", coroutine.status(co))
    assert.is_function(task._dequeue)
    assert.is_false(q:isEmpty())
    assert.are.same({}, q:wait(0.02))
    assert.are.equal(4, b:try_write("data"))
    assert.are.same({ task }, q:wait(1))
    res = resume(task, co)
    assert.are.equal("dead", coroutine.status(co))
    assert.are.same({ true, "data", n = 2 }, res)
    assert.is_true(q:isEmpty())
    a:close()
    b:close()
  end)

  it("read: schedule on the _queue of the task current at the call", function()
    local q1, q2 = xpio.tqueue(), xpio.tqueue()
    local task = { _queue = q2 }
    local a, b = assert(xpio.socketpair())
    local co = start(task, function() return a:read(100) end)
    assert.are.equal("suspended", coroutine.status(co))
    assert.is_true(q1:isEmpty())
    assert.is_false(q2:isEmpty())
    b:try_write("z")
    assert.are.same({}, q1:wait(0))
    assert.are.same({ task }, q2:wait(1))
    assert.are.same({ true, "z", n = 2 }, resume(task, co))
    a:close()
    b:close()
  end)

  it("read: report end of stream (a single nil) when the peer closes while waiting", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    local co = start(task, function() return a:read(100) end)
    assert.are.equal("suspended", coroutine.status(co))
    b:close()
    local res = finish(q, task, co, { true })
    assert.are.same({ true, nil, n = 2 }, res)
    a:close()
  end)

  it("read: return nil, message when the socket is closed while waiting", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    local co = start(task, function() return a:read(100) end)
    assert.are.equal("suspended", coroutine.status(co))
    a:close()
    assert.are.same({ task }, q:wait(1))
    local res = resume(task, co)
    assert.are.equal("dead", coroutine.status(co))
    assert.is_true(res[1])
    assert.is_nil(res[2])
    assert.is_string(res[3])
    b:close()
  end)

  it("read: yield again rather than return 'retry' when woken with nothing left to read", function()
    local q = xpio.tqueue()
    local t1, t2 = { _queue = q }, { _queue = q }
    local a, b = assert(xpio.socketpair())
    local co1 = start(t1, function() return a:read(1) end)
    local co2 = start(t2, function() return a:read(1) end)
    b:try_write("x")
    local ready = wait_for(q, t1)
    if not contains(ready, t2) then wait_for(q, t2) end
    assert.are.same({ true, "x", n = 2 }, resume(t1, co1))
    local res = resume(t2, co2)
    assert.is_true(res[1])
    assert.are.equal("suspended", coroutine.status(co2), "second reader returned " .. tostring(res[2]) .. ", " .. tostring(res[3]))
    assert.is_function(t2._dequeue)
    b:try_write("y")
    assert.are.same({ t2 }, q:wait(1))
    assert.are.same({ true, "y", n = 2 }, resume(t2, co2))
    a:close()
    b:close()
  end)

  it("raise an error when the current task is already scheduled, leaving its registration alone", function()
    -- e.g. two coroutines sharing one task: the second must not silently
    -- take the first one's place (the first would then never wake)
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    local c, d = assert(xpio.socketpair())
    local first = start(task, function() return a:read(10) end)
    assert.are.equal("suspended", coroutine.status(first))
    local dequeue, data = task._dequeue, task._dequeuedata
    local second, res = start(task, function() return c:read(10) end)
    assert.is_false(res[1], "the second blocking call yielded")
    assert.matches("already scheduled", res[2])
    assert.are.equal("dead", coroutine.status(second))
    assert.are.equal(dequeue, task._dequeue)
    assert.are.equal(data, task._dequeuedata)
    -- the first registration still stands
    d:try_write("c")
    assert.are.same({}, q:wait(0.02))
    b:try_write("a")
    assert.are.same({ task }, q:wait(1))
    assert.are.same({ true, "a", n = 2 }, resume(task, first))
    for _, s in ipairs({ a, b, c, d }) do s:close() end
  end)

  it("a write that sent part of its data when the task is already scheduled answers nil, message, count", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    local x, y = assert(xpio.socketpair())
    assert.is_true(x:when_read(task))   -- the task waits elsewhere already
    local co, res = start(task, function() return a:write(string.rep("w", 1 << 22)) end)
    assert.are.equal("dead", coroutine.status(co))
    assert.is_true(res[1])
    assert.is_nil(res[2])
    assert.matches("^xpio: write: the current task is already scheduled", res[3])
    local got = drain(b)
    assert.is_true(got > 0)
    assert.are.equal(got, res[4])
    -- the registration it had stands
    assert.is_true(y:try_write("y") == 1)
    assert.are.same({ task }, q:wait(1))
    for _, s in ipairs({ a, b, x, y }) do s:close() end
  end)

  it("write: yield on a full socket and complete once the peer drains it", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local a, b = assert(xpio.socketpair())
    local filled = fill(a)
    local co, res = start(task, function() return a:write("after") end)
    assert.is_true(res[1])
    assert.are.equal("suspended", coroutine.status(co))
    assert.is_function(task._dequeue)
    assert.are.same({}, q:wait(0.02))
    assert.are.equal(filled, drain(b))
    res = finish(q, task, co, res)
    assert.are.same({ true, 5, n = 2 }, res)
    assert.are.equal("after", b:try_read(100))
    a:close()
    b:close()
  end)

  it("write: return nil, 'Broken pipe' when the reader goes away while waiting", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local r, w = assert(xpio.pipe())
    fill(w)
    local co, res = start(task, function() return w:write("x") end)
    assert.are.equal("suspended", coroutine.status(co))
    r:close()
    res = finish(q, task, co, res)
    assert.are.same({ true, nil, "Broken pipe", n = 3 }, res)
    w:close()
  end)

  it("accept: yield until a client connects, then return the connection", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local l, addr = listener()
    local co, res = start(task, function() return l:accept() end)
    assert.is_true(res[1])
    assert.are.equal("suspended", coroutine.status(co))
    assert.are.same({}, q:wait(0.02))
    local c = assert(xpio.socket("TCP"))
    c:try_connect(addr)
    res = finish(q, task, co, res)
    assert.is_true(res[1])
    local conn = res[2]
    assert.are.equal("userdata", type(conn))
    assert.are.equal(c:getsockname(), conn:getpeername())
    conn:close()
    c:close()
    l:close()
  end)

  it("connect: complete a TCP connection through the queue", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local l, addr = listener()
    local c = assert(xpio.socket("TCP"))
    local co, res = start(task, function() return c:connect(addr) end)
    res = finish(q, task, co, res)
    assert.are.same({ true, true, n = 2 }, res)
    assert.are.equal(addr, c:getpeername())
    local conn = assert(l:try_accept())
    assert.are.equal(5, c:try_write("hello"))
    local probe = { _queue = q }
    conn:when_read(probe)
    wait_for(q, probe)
    assert.are.equal("hello", conn:try_read(10))
    conn:close()
    c:close()
    l:close()
  end)

  it("connect: return nil, 'Connection refused' when nothing listens", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local c = assert(xpio.socket("TCP"))
    local co, res = start(task, function() return c:connect(closed_address()) end)
    res = finish(q, task, co, res)
    assert.are.same({ true, nil, "Connection refused", n = 3 }, res)
    c:close()
  end)

  it("process:wait: yield until the child exits, then return its status", function()
    local q = xpio.tqueue()
    local task = { _queue = q }
    local p = assert(xpio.spawn({ "sh", "-c", "sleep 0.1; exit 3" }, xpio.env))
    local co, res = start(task, function() return p:wait() end)
    assert.is_true(res[1])
    assert.are.equal("suspended", coroutine.status(co))
    res = finish(q, task, co, res)
    assert.are.same({ true, "exit", 3, n = 3 }, res)
  end)
end)

describe("a hand-written loop over blocking functions", function()
  it("runs two coroutines echoing 200 messages over a socket pair", function()
    local q = xpio.tqueue()
    local a, b = assert(xpio.socketpair())
    local received = {}
    local read_exactly, write_all = helper.read_exactly, helper.write_all
    local echo = { _queue = q }
    echo.co = coroutine.create(function()
      for _ = 1, 200 do
        local len = tonumber(read_exactly(b, 8))
        write_all(b, read_exactly(b, len))
      end
      return "echo done"
    end)
    local client = { _queue = q }
    client.co = coroutine.create(function()
      for i = 1, 200 do
        local msg = string.rep(string.char(i % 256), i * 97)
        write_all(a, ("%08d"):format(#msg) .. msg)
        received[i] = read_exactly(a, #msg) == msg
      end
      return "client done"
    end)
    local results = {}
    local runnable = { echo, client }
    local deadline = xpio.gettime() + 10
    while #runnable > 0 or not q:isEmpty() do
      assert(xpio.gettime() < deadline, "the loop did not finish in time")
      for _, task in ipairs(runnable) do
        local res = resume(task, task.co)
        assert(res[1], res[2])
        if coroutine.status(task.co) == "dead" then
          results[#results + 1] = res[2]
        else
          assert(task._dequeue, "a task yielded without being scheduled")
        end
      end
      runnable = q:isEmpty() and {} or assert(q:wait(5))
    end
    table.sort(results)
    assert.are.same({ "client done", "echo done" }, results)
    assert.are.equal(200, #received)
    for i = 1, 200 do assert.is_true(received[i], "message " .. i) end
    a:close()
    b:close()
  end)
end)
