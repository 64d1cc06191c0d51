-- xpio.luasocket inside xpio.sched tasks: a call that must wait parks its
-- task and the others run; timeouts ("b" and "t") end the wait alone; select
-- waits without blocking the scheduler; a coroutine nested inside a task
-- (not the task itself) blocks on the private queue instead of yielding
-- into its caller.
local xpio = require "xpio"
local sched = require "xpio.sched"
local socket = require "xpio.luasocket"

local function pair()
  local server = assert(socket.bind("127.0.0.1", 0))
  local ip, port = server:getsockname()
  local c = assert(socket.connect(ip, port))
  local a = assert(server:accept())
  server:close()
  return c, a
end

describe("xpio.luasocket in xpio.sched tasks", function()
  it("parks a receiving task while another one runs and sends", function()
    local c, a = pair()
    local order = {}
    sched.spawn(function()
      order[#order + 1] = "receive"
      local line = a:receive()
      order[#order + 1] = line
    end)
    sched.spawn(function()
      order[#order + 1] = "send"
      sched.sleep(0.05)
      assert(c:send("late line\n"))
    end)
    sched.run()
    assert.are.same({ "receive", "send", "late line" }, order)
    c:close() a:close()
  end)

  for _, mode in ipairs({ "b", "t" }) do
    it("ends a wait at its '" .. mode .. "' timeout with the partial result, others going on", function()
      local c, a = pair()
      local result, ticks = nil, 0
      local done = false
      sched.spawn(function()
        a:settimeout(0.3, mode)
        assert(c:send("partial"))
        local t0 = xpio.gettime()
        result = { a:receive() }
        result.elapsed = xpio.gettime() - t0
        done = true
      end)
      sched.spawn(function()
        while not done do
          ticks = ticks + 1
          sched.sleep(0.01)
        end
      end)
      sched.run()
      assert.are.same({ nil, "timeout", "partial" }, { result[1], result[2], result[3] })
      assert.is_true(result.elapsed >= 0.25 and result.elapsed < 10, "elapsed " .. result.elapsed)
      assert.is_true(ticks >= 5, "ticks " .. ticks)
      c:close() a:close()
    end)
  end

  it("selects without blocking the scheduler", function()
    local c, a = pair()
    local readable, err
    sched.spawn(function()
      local _
      readable, _, err = socket.select({ a }, nil, 10)
    end)
    sched.spawn(function()
      sched.sleep(0.05)
      assert(c:send("x"))
    end)
    sched.run()
    assert.is_nil(err)
    assert.are.equal(a, readable[1])
    c:close() a:close()
  end)

  it("blocks, rather than yields, in a coroutine nested inside a task", function()
    local c, a = pair()
    local got
    sched.spawn(function()
      local inner = coroutine.wrap(function()
        a:settimeout(0.1)
        return a:receive()
      end)
      got = { inner() }
    end)
    sched.run()
    assert.are.same({ nil, "timeout", "" }, got)
    c:close() a:close()
  end)

  it("serves one object's calls from several tasks in call order, each send contiguous", function()
    local c, a = pair()
    local n = 4 * 1024 * 1024
    local stream
    sched.spawn(function() assert(c:send(string.rep("A", n))) end)
    sched.spawn(function() assert(c:send(string.rep("B", n))) end)
    sched.spawn(function() stream = assert(a:receive(2 * n)) end)
    sched.run()
    local runs = 0
    for _ in stream:gmatch("A+") do runs = runs + 1 end
    assert.are.equal(1, runs)
    local got = {}
    sched.spawn(function() got.first = a:receive(12) end)      -- called first
    sched.spawn(function() got.second = a:receive("*l") end)   -- called second
    sched.spawn(function()
      assert(c:send("hello\nworl"))
      sched.sleep(0.05)
      assert(c:send("d!\nsecond\n"))
    end)
    sched.run()
    assert.are.same({ first = "hello\nworld!", second = "" }, got)
    c:close() a:close()
  end)

  it("gives a receive that timed out or was cancelled no byte that came after it ended", function()
    local c, a = pair()
    local result
    local start = xpio.gettime()
    sched.spawn(function()
      a:settimeout(0.2)
      result = table.pack(a:receive("*l"))
    end)
    sched.spawn(function()            -- its timer is due before the reader's
      sched.sleep(0.1)
      assert(c:send("line1\nline2\n"))
    end)
    sched.spawn(function()            -- holds the loop until both timers are due
      while xpio.gettime() < start + 0.4 do end
    end)
    sched.run()
    -- The reader's timeout fired; the lines were sent (in the same turn)
    -- after it had ended, so they are the next receive's, not its partial.
    assert.are.same({ nil, "timeout", "", n = 3 }, result)
    a:settimeout(10)
    assert.are.equal("line1", a:receive())
    assert.are.equal("line2", a:receive())
    local reader = sched.spawn(function() result = table.pack(a:receive("*l")) end)
    sched.spawn(function()
      assert(c:send("a\nb\n"))
      sched.cancel(reader)
    end)
    sched.run()
    assert.are.equal(nil, result[1])
    assert.are.equal("", result[3])
    assert.are.equal("a", a:receive())
    c:close() a:close()
  end)

  it("has no multicast TTL option: it does not set the unicast one", function()
    local u = socket.udp()
    assert(u:setsockname("127.0.0.1", 0))
    local before = u:xpio():getsockopt("IP_TTL")
    assert.is_false((pcall(u.setoption, u, "ip-multicast-ttl", 1)))
    assert.are.equal(before, u:xpio():getsockopt("IP_TTL"))
    u:close()
  end)

  it("install makes require 'socket' return the module", function()
    local saved = package.loaded.socket
    assert.are.equal(socket, socket.install())
    assert.are.equal(socket, require "socket")
    package.loaded.socket, package.loaded["socket.core"] = saved, nil
  end)
end)
