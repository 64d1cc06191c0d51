-- Signals as events (issue 15). Contract: Spec/module.spec (xpio.signal)
-- and Spec/signal.spec. Runs on both backends: signalfd (epoll) and the
-- self-pipe (poll).
local xpio = require "xpio"
local helper = require "helper"

--- This interpreter's blocked and caught signal masks (from /proc).
local function masks()
  local f = assert(io.open("/proc/self/task/" .. helper.pid() .. "/status"))
  local text = f:read("a")
  f:close()
  return text:match("SigBlk:%s*(%x+)"), text:match("SigCgt:%s*(%x+)")
end

describe("xpio.signal", function()
  it("delivers SIGUSR1 and SIGTERM to a waiting coroutine 1000 times, none lost or doubled", function()
    local usr1 = assert(xpio.signal("USR1"))
    local term = assert(xpio.signal("SIGTERM"))
    -- the sender sends one signal, then waits for our acknowledgement
    local ack_r, ack_w = assert(xpio.pipe())
    local script = "i=0; while [ $i -lt 500 ]; do kill -USR1 " .. helper.pid() .. "; read -r _; kill -TERM "
      .. helper.pid() .. "; read -r _; i=$((i+1)); done"
    local sender = assert(xpio.spawn({ "sh", "-c", script }, xpio.env, { [0] = ack_r }))
    local got = {}
    local sched = helper.fresh_sched()
    helper.run_tasks(sched, 60, { function()
      for i = 1, 1000 do
        local watch = (i % 2 == 1) and usr1 or term
        local number, pid = watch:wait()
        got[#got + 1] = number
        assert.are.equal(sender:pid(), pid)
        assert(ack_w:write("ok\n"))
      end
      assert.are.same({ "exit", 0 }, { sender:wait() })
    end })
    local usr1s, terms = 0, 0
    for i, number in ipairs(got) do
      if i % 2 == 1 then assert.are.equal(10, number) usr1s = usr1s + 1 else assert.are.equal(15, number) terms = terms + 1 end
    end
    assert.are.equal(500, usr1s)
    assert.are.equal(500, terms)
    assert.are.same({ nil, "retry" }, { usr1:try_wait() })   -- nothing doubled
    assert.are.same({ nil, "retry" }, { term:try_wait() })
    usr1:close()
    term:close()
    ack_w:close()
  end)

  it("coalesces a standard signal sent again before it was read", function()
    local watch = assert(xpio.signal("USR2"))
    -- each kill is delivered before os.execute returns (its wait for the
    -- shell is a system call, and a signal is handled on the way out)
    for _ = 1, 5 do assert(os.execute("kill -USR2 " .. helper.pid())) end
    local n = 0
    while watch:try_wait() do n = n + 1 end
    assert.are.equal(1, n)
    -- read, it can come again
    assert(os.execute("kill -USR2 " .. helper.pid()))
    assert.are.equal(12, (watch:try_wait()))
    watch:close()
  end)

  it("puts the mask and the disposition back when closed, and discards what is pending", function()
    local blocked, caught = masks()
    local watch = assert(xpio.signal("WINCH"))
    assert(os.execute("kill -WINCH " .. helper.pid()))
    watch:close()                                  -- pending WINCH discarded (its default is to ignore it anyway)
    assert.are.same({ blocked, caught }, { masks() })
    assert.are.same({ nil, "xpio: signal is closed" }, { watch:close() })
    assert.are.same({ nil, "xpio: signal is closed" }, { watch:try_wait() })
    -- and the signal can be watched again
    local again = assert(xpio.signal(28))
    assert.are.equal(28, again:number())
    again:close()
  end)

  it("collecting a watch closes it", function()
    local blocked = masks()
    do
      local _ <close> = assert(xpio.signal("USR1"))
    end
    assert.are.equal(blocked, (masks()))
    do
      local dropped = assert(xpio.signal("USR1"))   -- free again; dropped without close
      assert.are.equal(10, dropped:number())
    end
    collectgarbage()
    collectgarbage()
    local third = assert(xpio.signal("USR1"))
    third:close()
  end)

  it("refuses what cannot or must not be watched", function()
    local watch = assert(xpio.signal("USR1"))
    assert.are.same({ nil, "xpio: the signal is already watched" }, { xpio.signal(10) })
    watch:close()
    assert.are.same({ nil, "xpio: SIGCHLD belongs to process:wait" }, { xpio.signal("CHLD") })
    assert.are.same({ nil, "Invalid argument" }, { xpio.signal("KILL") })
    assert.are.same({ nil, "Invalid argument" }, { xpio.signal("STOP") })
    local ok, err = pcall(xpio.signal, "NOPE")
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to 'signal' (signal must be a signame name", 1, true), err)
    ok, err = pcall(xpio.signal, 99)
    assert.is_false(ok)
    assert.truthy(err:find("invalid signal number", 1, true), err)
    -- a number that is no integer: said so, not "number or string expected, got number"
    ok, err = pcall(xpio.signal, 1.5)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to 'signal' (number has no integer representation)", 1, true), err)
  end)

  it("the signal object has the kind's metamethods and a name", function()
    local watch = assert(xpio.signal("USR1"))
    assert.are.equal("xpio.signal", getmetatable(watch).__name)
    assert.are.equal("xpio.signal: signal 10", tostring(watch))
    watch:close()
    assert.are.equal("xpio.signal: closed", tostring(watch))
  end)

  it("does not disturb XPIO's children: process:wait still works while signals are watched", function()
    local watch = assert(xpio.signal("USR1"))
    local p = assert(xpio.spawn({ "true" }, xpio.env))
    helper.run_tasks(helper.fresh_sched(), 10, { function() assert.are.same({ "exit", 0 }, { p:wait() }) end })
    watch:close()
  end)
end)
