-- Errors under xpio.sched (issue 21): join raises the error value itself,
-- sched.traceback, the onerror handler (by default to stderr, the other
-- tasks going on), strict mode, and the standard argument errors of every
-- function. Contract: lua/xpio/sched.lua.
local helper = require "helper"

describe("sched errors", function()
  it("join raises a task's error value itself: a table stays the same table", function()
    local sched = helper.fresh_sched()
    local value = { code = 42 }
    local failing = sched.spawn(function()
      sched.sleep(0.01)
      error(value)
    end)
    local caught
    helper.run_tasks(sched, 5, { function()
      local ok, err = pcall(sched.join, failing)
      assert.is_false(ok)
      caught = err
    end })
    assert.are.equal(value, caught)
    assert.is_true(failing.failed)
  end)

  it("sched.traceback gives the failed task's traceback, nil for a task that did not fail", function()
    local sched = helper.fresh_sched()
    local function deep_failure() error("deep", 0) end
    local failing = sched.spawn(function() sched.sleep(0.01) deep_failure() end)
    local fine = sched.spawn(function() return 1 end)
    helper.run_tasks(sched, 5, { function()
      pcall(sched.join, failing)
      sched.join(fine)
    end })
    local tb = sched.traceback(failing)
    assert.is_string(tb)
    assert.truthy(tb:find("^deep"), tb)
    assert.truthy(tb:find("stack traceback:", 1, true), tb)
    assert.truthy(tb:find("deep_failure", 1, true), tb)
    assert.is_nil(sched.traceback(fine))
  end)

  it("closes a failed task's <close> variables when it fails, before its handler and joiners hear", function()
    local xpio = require "xpio"
    local sched = helper.fresh_sched()
    local a, b = assert(xpio.socketpair())
    local closed_when_handled
    local previous = sched.onerror(function() closed_when_handled = tostring(a) end)
    local failing = sched.spawn(function()
      local conn <close> = a
      assert(conn:readline())
      error("bad request", 0)
    end)
    local answer
    helper.run_tasks(sched, 20, { function()
      assert(b:write("hello\n"))
      answer = table.pack(sched.timeout(10, b.read, b, 10))
    end })
    sched.onerror(previous)
    assert.are.same({ n = 1 }, answer)                 -- the peer saw the end of the stream
    assert.matches("closed", closed_when_handled)
    assert.matches("bad request", sched.traceback(failing))
    b:close()
  end)

  it("hands an error nobody joins to onerror(err, task, traceback), and the other tasks go on", function()
    local sched = helper.fresh_sched()
    local seen = {}
    local previous = sched.onerror(function(err, task, traceback)
      seen[#seen + 1] = { err = err, task = task, traceback = traceback }
    end)
    assert.are.equal(sched.raise, previous)
    local value = setmetatable({}, { __tostring = function() return "a table error" end })
    local failing = sched.spawn(function() sched.sleep(0.01) error(value) end)
    local steps = 0
    local survivor = sched.spawn(function()
      for _ = 1, 5 do
        sched.sleep(0.01)
        steps = steps + 1
      end
    end)
    assert.has_no.errors(function() sched.run() end)
    assert.are.equal(5, steps)
    assert.is_true(survivor.done)
    assert.are.equal(1, #seen)
    assert.are.equal(value, seen[1].err)
    assert.are.equal(failing, seen[1].task)
    assert.truthy(seen[1].traceback:find("^a table error"), seen[1].traceback)
    -- a later join still raises it
    local raised
    helper.run_tasks(sched, 5, { function() raised = select(2, pcall(sched.join, failing)) end })
    assert.are.equal(value, raised)
  end)

  it("by default writes the error and its traceback to stderr and keeps the server running", function()
    local out, ok = helper.run_lua_script([[
      local sched = require "xpio.sched"
      local served = 0
      sched.spawn(function() sched.sleep(0.01) error("handler crashed") end)
      sched.spawn(function()
        for _ = 1, 3 do sched.sleep(0.02) served = served + 1 end
      end)
      sched.run()
      print("served " .. served)
    ]])
    assert.is_true(ok, out)
    assert.truthy(out:find("xpio.sched: a task failed: [^\n]*handler crashed"), out)
    assert.truthy(out:find("stack traceback:", 1, true), out)
    assert.truthy(out:find("served 3", 1, true), out)
  end)

  it("strict mode (onerror(sched.raise)) raises the error value from run", function()
    local sched = helper.fresh_sched(true)
    sched.onerror(sched.raise)
    local value = { "strict" }
    sched.spawn(function() error(value) end)
    local ok, err = pcall(sched.run)
    assert.is_false(ok)
    assert.are.equal(value, err)
  end)

  it("a handler that raises makes run raise that error (its own strictness)", function()
    local sched = helper.fresh_sched(true)
    sched.onerror(function(err) error("wrapped: " .. err, 0) end)
    sched.spawn(function() error("inner", 0) end)
    local ok, err = pcall(sched.run)
    assert.is_false(ok)
    assert.are.equal("wrapped: inner", err)
  end)
end)

describe("sched argument errors", function()
  -- Each case: a call, then the message it must raise, exactly as
  -- luaL_argerror words it.
  local function check(cases)
    for _, case in ipairs(cases) do
      local ok, err = pcall(case[1])
      assert.is_false(ok, case[2])
      assert.are.equal(case[2], (tostring(err):gsub("^[^:]*:%d+: ", "")))
    end
  end

  it("are in the standard form for every function outside a task", function()
    local sched = helper.fresh_sched()
    check({
      { function() sched.spawn() end, "bad argument #1 to 'spawn' (function expected, got no value)" },
      { function() sched.spawn(1) end, "bad argument #1 to 'spawn' (function expected, got number)" },
      { function() sched.sleep("x") end, "bad argument #1 to 'sleep' (number expected, got string)" },
      { function() sched.sleep(0 / 0) end, "bad argument #1 to 'sleep' (number expected, got NaN)" },
      { function() sched.timeout("1", print) end, "bad argument #1 to 'timeout' (number expected, got string)" },
      { function() sched.timeout(1, 2) end, "bad argument #2 to 'timeout' (function expected, got number)" },
      { function() sched.join({}) end, "bad argument #1 to 'join' (xpio.sched.task expected, got table)" },
      { function() sched.cancel(nil) end, "bad argument #1 to 'cancel' (xpio.sched.task expected, got no value)" },
      { function() sched.cancel(sched.spawn(function() end), 5) end, "bad argument #2 to 'cancel' (string expected, got number)" },
      { function() sched.traceback("t") end, "bad argument #1 to 'traceback' (xpio.sched.task expected, got string)" },
      { function() sched.onerror(true) end, "bad argument #1 to 'onerror' (function expected, got boolean)" },
      { function() sched.step("0") end, "bad argument #1 to 'step' (number expected, got string)" },
      { function() sched.semaphore() end, "bad argument #1 to 'semaphore' (number expected, got no value)" },
      { function() sched.semaphore(1.5) end, "bad argument #1 to 'semaphore' (number has no integer representation)" },
      { function() sched.sleep(1) end, "xpio.sched: sleep must be called from a task" },
      { function() sched.timeout(1, print) end, "xpio.sched: timeout must be called from a task" },
    })
    sched.run()
  end)

  it("point at the caller's line", function()
    local sched = helper.fresh_sched()
    local ok, err = pcall(function() sched.sleep("x") end)
    assert.is_false(ok)
    assert.truthy(err:find("sched_errors_spec.lua:%d+: bad argument #1 to 'sleep'"), err)
  end)
end)
