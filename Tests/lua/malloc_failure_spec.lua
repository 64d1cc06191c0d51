-- When malloc itself fails (the address space limited with `ulimit -v`),
-- not Lua's allocator, which Tests/oom fails: XPIO's own allocations on
-- a path that can fail anyway answer "Cannot allocate memory" or raise
-- "not enough memory", never crash. A child interpreter fills its memory
-- with Lua strings, then gives some back a little at a time and calls
-- XPIO at each step (the testers' scenarios: a spawn's environment, a
-- queue whose tables grow). Not every allocation is covered: the Swift
-- arrays a call's table arguments become (an `env` of thousands of
-- entries) still trap when malloc fails (README, Reliability).
local helper = require "helper"

-- Under AddressSanitizer or valgrind the address-space limit breaks the
-- tool itself, not XPIO.
local limited = os.getenv("ASAN_OPTIONS") == nil and os.getenv("XPIO_LUA") == nil

local PREFIX = "ulimit -v 300000"

local function survives(script)
  local out, ok, how, code = helper.run_lua_script(script, PREFIX)
  assert(ok, ("the child ended by %s %s:\n%s"):format(tostring(how), tostring(code), out))
  assert.matches("survived", out)
end

describe("malloc failing under XPIO", function()
  if not limited then
    it("is not checked under AddressSanitizer or valgrind", function() pending("ulimit -v breaks the tool") end)
    return
  end

  it("spawn with a large environment fails the call, never crashes", function()
    survives([[
      local xpio = require "xpio"
      local function spawn()
        local env = {}
        for i = 1, 300 do env["V" .. i] = ("v"):rep(200) end
        local p = xpio.spawn({ "/bin/true" }, env)
        if p then p:close() end
      end
      spawn()
      collectgarbage()
      local ballast, chunk = {}, ("B"):rep(4000)
      pcall(function() while true do ballast[#ballast + 1] = chunk .. #ballast end end)
      for _ = 1, 300 do
        ballast[#ballast] = nil
        collectgarbage()
        pcall(spawn)
      end
      ballast = nil
      collectgarbage()
      spawn()
      print("survived")
    ]])
  end)

  it("a queue whose tables must grow answers nil, message, never crashes", function()
    survives([[
      local xpio = require "xpio"
      local q = xpio.tqueue()
      local a, b = xpio.socketpair()
      local tasks = {}
      for i = 1, 200000 do tasks[i] = { _queue = q } end
      local ballast, chunk = {}, ("B"):rep(4000)
      pcall(function() while true do ballast[#ballast + 1] = chunk .. #ballast end end)
      -- Give back 4 KB at a time and schedule until something fails: each
      -- step meets the queue's growth at another point, its own tables'
      -- (which must answer "Cannot allocate memory") or Lua's.
      local scheduled, failures = 0, 0
      for _ = 1, 300 do
        ballast[#ballast] = nil
        collectgarbage()
        while scheduled < #tasks do
          local ok, done, err = pcall(a.when_read, a, tasks[scheduled + 1])
          if not ok or not done then
            local why = ok and err or done
            assert(why == "Cannot allocate memory" or tostring(why):find("not enough memory"), why)
            failures = failures + 1
            break
          end
          scheduled = scheduled + 1
        end
      end
      assert(failures > 0, "nothing failed")
      ballast = nil
      collectgarbage()
      assert(b:try_write("x"))
      local ready = assert(q:wait(1))
      assert(#ready == scheduled, #ready .. " of " .. scheduled)
      print("survived")
    ]])
  end)
end)
