-- Smoke test: every examples/*.lua runs to completion with the interpreter
-- and the LUA_CPATH/LUA_PATH of this test run, exits 0, and prints what
-- shows that it did its job.

local helper = require "helper"
local shell_quote, ROOT, LUA = helper.shell_quote, helper.ROOT, helper.LUA
local TIME_LIMIT = 60            -- seconds per example, enforced by timeout(1)

-- What each example must print (Lua patterns, all must match).
local expected = {
  ["demo.lua"] = { "client sent hello, got back hello", "said \"hello from a child process\" and ended with exit 0",
                   "demo done" },
  ["echo.lua"] = { "client 4 done", "echo: 4 clients served, 3 lines each" },
  ["jobs.lua"] = {
    "echo hello%s+exit 0%s+6%s+0",
    "echo to stderr >&2; exit 3%s+exit 3%s+0%s+10",
    "echo started; sleep 30%s+signal 9 %(timeout%)%s+8%s+0",
    "yes | head %-c 100000%s+exit 0%s+100000%s+0",
    "jobs: 7 run, 4 ok, 2 failed, 1 timed out",
  },
  ["pipeline.lua"] = { "pipeline: 40951 of 1%.%.100000 contain a 7 %(expected 40951%)" },
  ["forward.lua"] = { "client got back 100029 bytes: HELLO THROUGH THE FORWARDER",
                      "forward: 100029 bytes up, 100029 bytes down" },
  ["luv_embed.lua"] = { "got pong 3", "timeout: timeout", "run: exit 0 from a child",
                        "luv_embed: 3 round trips through luv" },
  ["network.lua"] = { "ipv6: %[::1%]:%d+ echoed hello over IPv6", "unix: unix:/%S+ echoed hello over a path",
                      "resolve: localhost:https is %[::1%]:443 and 127%.0%.0%.1:443",
                      "name: localhost:%d+ echoed hello by name", "udp: sent ping, got back PING",
                      "timeout: recvfrom gave nil, timeout", "network done" },
  ["service.lua"] = { "client got HELLO", "client got WORLD", "stats: 2 requests served", "TERM: shutting down",
                      "worker stopped: signal 15", "service done" },
}

-- Ask the interpreter that runs the examples, in a child process: loading luv
-- here would make busted unload it after this file, and luv 1.44 crashes when
-- required again in the same state (luvit/luv#244, fixed by luvit/luv#821).
local function has_luv()
  return os.execute(LUA .. " -e 'require \"luv\"' >/dev/null 2>&1") == true
end

-- Examples that take arguments and need a peer: tls_spec.lua runs them
-- against local servers and clients.
local tested_elsewhere = { ["https_get.lua"] = true, ["tls_echo.lua"] = true }

local function list_examples()
  local names = {}
  local p = assert(io.popen("ls " .. shell_quote(ROOT .. "/examples")))
  for line in p:lines() do
    if line:match("%.lua$") and not tested_elsewhere[line] then names[#names + 1] = line end
  end
  p:close()
  table.sort(names)
  return names
end

-- Run one example from the repository root; returns its output (stdout and
-- stderr together), and how it ended as io.popen's close reports it.
local function run_example(name)
  local output, _, how, code = helper.run_command(("cd %s && timeout -k 5 %d %s examples/%s"):format(
    shell_quote(ROOT), TIME_LIMIT, LUA, shell_quote(name)))
  return output, how, code
end

describe("examples", function()
  local names = list_examples()

  it("include every documented example", function()
    local present = {}
    for _, name in ipairs(names) do present[name] = true end
    for name in pairs(expected) do
      assert.is_true(present[name] == true, "missing examples/" .. name)
    end
  end)

  for _, name in ipairs(names) do
    it(name .. " runs, exits 0 and shows its result", function()
      if name == "luv_embed.lua" then
        if not has_luv() then
          pending("luv is not installed")
          return
        end
      end
      local started = os.time()
      local output, how, code = run_example(name)
      local context = ("examples/%s ended with %s %s after about %d s; output:\n%s")
        :format(name, how, code, os.time() - started, output)
      assert.are.equal("exit", how, context)
      assert.are.equal(0, code, context)
      for _, pattern in ipairs(expected[name] or {}) do
        assert.is_truthy(output:find(pattern), ("expected %q in the output of %s"):format(pattern, context))
      end
    end)
  end
end)
