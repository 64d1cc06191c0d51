-- Process control beyond wait and kill (issue 15): stop, killgroup, the
-- files shortcuts, attrs.umask, and xpio.run. Contract: Spec/process.spec,
-- Spec/module.spec (spawn) and lua/xpio/run.lua.
local xpio = require "xpio"
local helper = require "helper"

--- Runs `fn(sched)` as a task of a fresh scheduler, for at most `limit` seconds.
local function run(limit, fn)
  local sched = helper.fresh_sched()
  helper.run_in_task(sched, limit, fn, sched)
end

local gone = helper.has_exited

describe("process:stop", function()
  it("a child that exits on SIGTERM gives signal 15, at once", function()
    local p = assert(xpio.spawn({ "sleep", "30" }, xpio.env))
    run(10, function(sched)
      local start = sched.now()
      assert.are.same({ "signal", 15 }, { p:stop(5) })
      assert.is_true(sched.now() - start < 2)
    end)
  end)

  it("a child that ignores SIGTERM is killed when the grace period ends", function()
    local r, w = assert(xpio.pipe())
    local p = assert(xpio.spawn({ "sh", "-c", "trap '' TERM; echo ready; exec sleep 30" }, xpio.env, { [1] = w }))
    run(10, function(sched)
      assert.are.equal("ready", r:readline())
      local start = sched.now()
      assert.are.same({ "signal", 9 }, { p:stop(0.3) })
      local elapsed = sched.now() - start
      assert.is_true(elapsed >= 0.25 and elapsed < 3, "took " .. elapsed)
      assert.are.same({ "signal", 9 }, { p:wait() })  -- known from now on
    end)
    r:close()
  end)

  it("on a child that has exited, returns its status", function()
    local p = assert(xpio.spawn({ "sh", "-c", "exit 4" }, xpio.env))
    run(10, function()
      assert.are.same({ "exit", 4 }, { p:wait() })
      assert.are.same({ "exit", 4 }, { p:stop() })
    end)
  end)

  it("a stop called again after one was abandoned keeps its own, shorter, grace", function()
    local r, w = assert(xpio.pipe())
    local p = assert(xpio.spawn({ "sh", "-c", "trap '' TERM; echo ready; exec sleep 30" }, xpio.env, { [1] = w }))
    run(20, function(sched)
      assert.are.equal("ready", r:readline())
      assert.are.same({ nil, "timeout" }, { sched.timeout(0.1, p.stop, p, 10) })
      local start = sched.now()
      assert.are.same({ "signal", 9 }, { p:stop(0.3) })
      local elapsed = sched.now() - start
      assert.is_true(elapsed >= 0.25 and elapsed < 5, "took " .. elapsed)
    end)
    r:close()
  end)

  it("a stop bounded by sched.timeout gives up, and the child can be stopped again", function()
    local p = assert(xpio.spawn({ "sh", "-c", "trap '' TERM; exec sleep 30" }, xpio.env))
    run(10, function(sched)
      sched.sleep(0.1)
      assert.are.same({ nil, "timeout" }, { sched.timeout(0.1, p.stop, p, 5) })
      assert.is_true(p:kill())
      assert.are.same({ "signal", 9 }, { p:wait() })
    end)
  end)
end)

describe("waiting for a child", function()
  it("gives its status when this process inherited SIGCHLD ignored", function()
    -- Ignored, SIGCHLD has the kernel reap children itself (no status);
    -- bash's `trap '' CHLD` passes it on through exec (dash's does not).
    local output, ok = helper.run_command("exec timeout -k 5 60 bash -c "
      .. helper.shell_quote("trap '' CHLD; exec " .. helper.LUA .. " -e " .. helper.shell_quote([[
        local xpio = require "xpio"
        local sched = require "xpio.sched"
        sched.spawn(function()
          local p = assert(xpio.spawn({ "sh", "-c", "exit 3" }))
          print("wait", p:wait())
          print("run", xpio.run({ "sh", "-c", "exit 2" }))
        end)
        sched.run()
      ]])))
    assert.is_true(ok, output)
    assert.matches("wait\texit\t3\n", output)
    assert.matches("run\texit\t2", output)
  end)

  it("a dropped child is reaped even when no reaper thread can start (RLIMIT_NPROC)", function()
    -- Threads count against RLIMIT_NPROC, which root ignores: the child
    -- interpreter runs as nobody, with 60 processes allowed, 59 of them
    -- its children. The dropped child's reaper thread cannot start; the
    -- next spawn reaps it.
    local whoami = helper.run_command("id -u")
    local _, tools = helper.run_command("command -v setpriv && command -v prlimit")
    if whoami ~= "0\n" or not tools then
      pending("needs root, setpriv and prlimit to run a child as nobody with RLIMIT_NPROC")
      return
    end
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local xpio = require "xpio"
      local sched = require "xpio.sched"
      local held = {}
      local function stop_held() for _, h in ipairs(held) do h:kill() end end
      for i = 1, 58 do
        local h, err = xpio.spawn({ "sleep", "30" })
        if not h then stop_held() error(err) end
        held[i] = h
      end
      local p = assert(xpio.spawn({ "sleep", "0.2" }))
      local pid = p:pid()
      p = nil
      collectgarbage()
      collectgarbage()
      local function state()
        local stat = io.open("/proc/" .. pid .. "/stat")
        if not stat then return "gone" end
        local text = stat:read("a")
        stat:close()
        return text:match("%) (%a)")
      end
      local deadline = xpio.gettime() + 20
      while state() ~= "Z" and state() ~= "gone" and xpio.gettime() < deadline do os.execute("sleep 0.05") end
      sched.spawn(function()
        for i = 1, 58 do held[i]:kill() held[i]:wait() end
        assert(xpio.spawn({ "true" })):wait()
      end)
      sched.run()
      print("state", state())
    ]])
    f:close()
    os.execute("chmod 644 " .. helper.shell_quote(script))
    -- The limit counts every process of the user: those nobody runs already too.
    local running = (helper.run_command("ps -u 65534 -o pid="))
    local limit = select(2, running:gsub("\n", "")) + 60
    local output, ok = helper.run_command("exec timeout -k 5 60 prlimit --nproc=" .. limit .. ":" .. limit
      .. " setpriv --reuid=65534 --regid=65534 "
      .. "--clear-groups env LUA_CPATH=" .. helper.shell_quote(package.cpath) .. " LUA_PATH=" .. helper.shell_quote(package.path)
      .. " " .. helper.LUA .. " " .. helper.shell_quote(script))
    os.remove(script)
    assert.is_true(ok, output)
    assert.matches("state\tgone", output)
  end)

  it("closing the process wakes the tasks waiting for it, on every backend", function()
    run(20, function(sched)
      local p = assert(xpio.spawn({ "sleep", "30" }))
      local results
      local waiter = sched.spawn(function() results = table.pack(p:wait()) end)
      sched.sleep(0.05)
      local started = xpio.gettime()
      p:close()
      sched.join(waiter)
      assert.is_true(xpio.gettime() - started < 10)
      assert.are.same({ nil, "xpio: process is closed", n = 2 }, results)
    end)
  end)
end)

describe("process:killgroup", function()
  it("reaches the grandchildren of a child that leads its group", function()
    local r, w = assert(xpio.pipe())
    local p = assert(xpio.spawn({ "sh", "-c", "sleep 30 & echo $!; sleep 30 & echo $!; wait" }, xpio.env,
      { [1] = w }, { pgroup = true }))
    run(10, function(sched)
      local grandchildren = { tonumber(r:readline()), tonumber(r:readline()) }
      assert.is_true(p:killgroup("TERM"))
      assert.are.same({ "signal", 15 }, { p:wait() })
      local deadline = sched.now() + 5
      while not (gone(grandchildren[1]) and gone(grandchildren[2])) and sched.now() < deadline do sched.sleep(0.02) end
      assert.is_true(gone(grandchildren[1]) and gone(grandchildren[2]), "the grandchildren survived")
    end)
    r:close()
  end)

  it("works through a new session too, and refuses a child in this process's group", function()
    local p = assert(xpio.spawn({ "sleep", "30" }, xpio.env, {}, { setsid = true }))
    assert.is_true(p:killgroup())
    local q = assert(xpio.spawn({ "sleep", "30" }, xpio.env))
    local ok, err = q:killgroup("TERM")
    assert.is_nil(ok)
    assert.truthy(err:find("shares this process's group", 1, true))
    run(10, function()
      assert.are.same({ "signal", 9 }, { p:wait() })
      q:kill()
      assert.are.same({ "signal", 9 }, { q:wait() })
    end)
  end)
end)

describe("spawn's files shortcuts and attrs.umask", function()
  it("\"null\" is /dev/null and \"stdout\" merges stderr into stdout's file", function()
    local r, w = assert(xpio.pipe())
    local p = assert(xpio.spawn({ "sh", "-c", "cat; echo out; echo err >&2; ls -l /proc/self/fd/0" }, xpio.env,
      { [0] = "null", [1] = w, [2] = "stdout" }))
    run(10, function()
      local text = r:readall()
      assert.truthy(text:find("out\nerr\n", 1, true), text)
      assert.truthy(text:find("/dev/null", 1, true), text)
      assert.are.same({ "exit", 0 }, { p:wait() })
    end)
    r:close()
  end)

  it("\"stdout\" without files[1] is an argument error, as is \"stdout\" for files[1] itself", function()
    for _, files in ipairs({ { [2] = "stdout" }, { [1] = "stdout" } }) do
      local ok, err = pcall(xpio.spawn, { "true" }, xpio.env, files)
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #3 to 'spawn' (\"stdout\" needs files[1])", 1, true), err)
    end
  end)

  it("maps onto the highest numbers the descriptor limit allows", function()
    -- a shell lowers the limit for one lua; the child writes through fd 63
    local script = [[
      local xpio = require "xpio"
      local r, w = assert(xpio.pipe())
      local p = assert(xpio.spawn({ "sh", "-c", "echo high > /proc/self/fd/63" }, {}, { [63] = w, [0] = 0, [1] = 1, [2] = 2 }))
      while not p:try_wait() do end
      print(assert(r:try_read(10)))
    ]]
    local out, ok = helper.run_command("ulimit -n 64 && timeout -s KILL 20 " .. helper.shell_quote(helper.LUA)
      .. " -e " .. helper.shell_quote(script))
    assert.is_true(ok, out)
    assert.are.equal("high\n\n", out)
  end)

  it("attrs.umask sets the child's umask, and this process keeps its own", function()
    local before = io.popen("sh -c umask"):read("l")
    local r, w = assert(xpio.pipe())
    local p = assert(xpio.spawn({ "sh", "-c", "umask" }, xpio.env, { [1] = w }, { umask = tonumber("027", 8) }))
    run(10, function()
      assert.are.equal("0027", r:readline())
      p:wait()
    end)
    assert.are.equal(before, io.popen("sh -c umask"):read("l"))
    r:close()
    local ok, err = pcall(xpio.spawn, { "true" }, xpio.env, nil, { umask = 512 })
    assert.is_false(ok)
    assert.truthy(err:find("attrs.umask", 1, true), err)
  end)
end)

describe("xpio.run", function()
  local xrun = require "xpio.run"

  it("is xpio.run too: the same function, through the module table, with its arguments checked", function()
    run(10, function(sched)
      assert.are.same({ "exit", 0, "hi\n", "" }, { xpio.run({ "echo", "hi" }, { scheduler = sched }) })
      assert.are.same({ "timeout", 15, "", "" }, { xpio.run({ "sleep", "5" }, { timeout = 0.2, scheduler = sched }) })
    end)
    local ok, err = pcall(xpio.run, "echo")
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'run' (table expected, got string)", err, 1, true)
  end)

  it("returns status, code, stdout and stderr, and feeds stdin", function()
    run(10, function(sched)
      local own = { scheduler = sched }
      assert.are.same({ "exit", 3, "out\n", "err\n" }, { xrun({ "sh", "-c", "echo out; echo err >&2; exit 3" }, own) })
      assert.are.same({ "exit", 0, "fed", "" }, { xrun({ "cat" }, { stdin = "fed", scheduler = sched }) })
      assert.are.same({ "exit", 0, "a\nb\n", "" },
        { xrun({ "sh", "-c", "echo a; echo b >&2" }, { stderr = "stdout", scheduler = sched }) })
      assert.are.same({ nil, "No such file or directory" }, { xrun({ "xpio-no-such-command" }, own) })
    end)
  end)

  it("stops feeding stdin when it returns, though something the command left holds stdin unread", function()
    -- counted with this test's scheduler (its queue's descriptor) made, and
    -- earlier tests' garbage collected: what is left is the run's
    local sched = helper.fresh_sched()
    collectgarbage()
    local fds = helper.open_fds()
    local results
    -- the background sleep keeps the command's stdin and never reads it: the
    -- feeder fills the pipe and waits (its stdout and stderr are /dev/null,
    -- so the command's own pipes end when sh exits)
    local script = "exec 3<&0; sleep 5 <&3 >/dev/null 2>&1 & echo $!"
    sched.spawn(function()
      results = { xrun({ "sh", "-c", script }, { stdin = string.rep("x", 1 << 20), scheduler = sched }) }
      assert(sched.queue:isEmpty(), "the stdin feeder still waits on the queue after run returned")
    end)
    local start = sched.now()
    local ok, err = pcall(sched.run)
    local elapsed = sched.now() - start
    local sleeper = results and tonumber(results[3])
    if sleeper and not helper.has_exited(sleeper) then
      local f = io.open("/proc/" .. sleeper .. "/comm")
      if f and f:read("l") == "sleep" then os.execute("kill " .. sleeper) end
      if f then f:close() end
    end
    assert(ok, err)
    assert.are.same({ "exit", 0 }, { results[1], results[2] })
    assert.is_number(sleeper)
    assert.is_true(elapsed < 2.5, "sched.run returned after " .. elapsed .. " s (the sleeper holds stdin for 5 s)")
    collectgarbage()
    assert.is_true(helper.open_fds() <= fds, "descriptors left: " .. helper.open_fds() - fds)
  end)

  it("runs 200 commands at once with timeouts, leaving no zombie and no descriptor", function()
    local fds, children = helper.open_fds(), helper.children_count()
    local results = {}
    local sched = helper.fresh_sched()
    local fns = {}
    for i = 1, 200 do
      fns[i] = function()
        local script = "echo " .. i .. "; [ " .. (i % 10) .. " = 0 ] && exec sleep 30; exit " .. (i % 7)
        results[i] = { xrun({ "sh", "-c", script }, { timeout = 2, grace = 0.2, scheduler = sched }) }
      end
    end
    helper.run_tasks(sched, 60, fns)
    for i = 1, 200 do
      local status, code, out = table.unpack(results[i])
      assert.are.equal(i .. "\n", out, "command " .. i)
      if i % 10 == 0 then
        assert.are.same({ "timeout", 15 }, { status, code }, "command " .. i)
      else
        assert.are.same({ "exit", i % 7 }, { status, code }, "command " .. i)
      end
    end
    collectgarbage()
    assert.is_true(helper.children_count() <= children, "children left: " .. helper.children_count() - children)
    assert.is_true(helper.open_fds() <= fds, "descriptors left: " .. helper.open_fds() - fds)
  end)

  it("on timeout stops the whole process group: a grandchild ignoring SIGTERM does not survive", function()
    local results
    -- the grandchild ignores TERM and holds the pipes; sh itself dies on TERM
    local script = "sh -c 'trap \"\" TERM; sleep 30' & echo $!; wait"
    run(20, function(sched)
      results = { xrun({ "sh", "-c", script }, { timeout = 0.3, grace = 0.2, scheduler = sched }) }
    end)
    local grandchild = tonumber(results[3])
    assert.is_number(grandchild, tostring(results[3]))
    local dead = false
    for _ = 1, 500 do                                  -- at most 5 s for init to reap it
      if helper.has_exited(grandchild) then dead = true break end
      helper.nap(0.01)
    end
    if not dead then os.execute("kill -9 " .. grandchild) end
    assert.are.equal("timeout", results[1])
    assert.is_true(dead, "the grandchild " .. grandchild .. " survived the timeout")
  end)

  it("caps what it collects per stream with max_output, draining the rest, and says so", function()
    run(20, function(sched)
      local status, code, out, err, truncated = xrun({ "sh", "-c", "head -c 300000 /dev/zero; echo abcdef >&2" },
        { max_output = 1000, scheduler = sched })
      assert.are.same({ "exit", 0, 1000, "abcdef\n", true }, { status, code, #out, err, truncated })
      local all = table.pack(xrun({ "echo", "hi" }, { max_output = 3, scheduler = sched }))
      assert.are.same({ "exit", 0, "hi\n", "", n = 4 }, all)
      status, code, out, err, truncated = xrun({ "echo", "hi" }, { max_output = 0, scheduler = sched })
      assert.are.same({ "exit", 0, "", "", true }, { status, code, out, err, truncated })
    end)
  end)

  it("checks its option fields in the standard form", function()
    run(10, function(sched)
      local cases = {
        { { timeout = "1" }, "bad argument #2 to 'run' (field 'timeout': number expected, got string)" },
        { { max_output = -1 }, "bad argument #2 to 'run' (field 'max_output': non-negative integer expected, got number)" },
        { { stdin = 5 }, "bad argument #2 to 'run' (field 'stdin': string expected, got number)" },
        { { stderr = "x" }, "bad argument #2 to 'run' (field 'stderr': \"stdout\" or nil expected)" },
        { { timeout = 0 / 0 }, "bad argument #2 to 'run' (field 'timeout': number expected, got NaN)" },
        { { grace = 0 / 0 }, "bad argument #2 to 'run' (field 'grace': number expected, got NaN)" },
        { { env = { ["A=B"] = "x" } }, "bad argument #2 to 'run' (field 'env': env[\"A=B\"] (the key) must be a "
          .. "non-empty name without '=' or NUL)" },
      }
      for _, case in ipairs(cases) do
        case[1].scheduler = sched
        local ok, err = pcall(xpio.run, { "true" }, case[1])
        assert.is_false(ok)
        assert.are.equal(case[2], err)
      end
      -- the arguments spawn checks are named as run's, and nothing was started
      local ok, err = pcall(xpio.run, {}, { scheduler = sched })
      assert.is_false(ok)
      assert.are.equal("bad argument #1 to 'run' (args[1] or attrs.exe must name the program)", err)
      -- from a coroutine inside the task: refused before the command starts
      local marker = os.tmpname()
      os.remove(marker)
      ok, err = pcall(coroutine.wrap(function()
        return xpio.run({ "sh", "-c", "touch " .. helper.shell_quote(marker) }, { scheduler = sched })
      end))
      assert.is_false(ok)
      assert.truthy(tostring(err):find("not the task's own", 1, true), tostring(err))
      sched.sleep(0.1)
      assert.is_nil(io.open(marker), "the command ran")
    end)
    local ok, err = pcall(xpio.run, { "true" })
    assert.is_false(ok)
    assert.are.equal("xpio.run: must be called from a task of xpio.sched", err)
  end)

  it("a cancelled caller stops the command's group too, and gets nil, 'cancelled'", function()
    local results, elapsed
    run(20, function(sched)
      local caller = sched.spawn(function()
        return table.pack(xrun({ "sh", "-c", "echo $$; exec sleep 30" }, { grace = 0.2, scheduler = sched }))
      end)
      sched.sleep(0.2)
      local t0 = sched.now()
      assert.is_true(sched.cancel(caller))
      results = sched.join(caller)
      elapsed = sched.now() - t0
    end)
    assert.are.same({ nil, "cancelled" }, { results[1], results[2] })
    local pid = tonumber(results[3])
    assert.is_number(pid, tostring(results[3]))
    assert.is_true(helper.has_exited(pid), "the command still runs")
    assert.is_true(elapsed < 5, "took " .. elapsed .. " s")
  end)
end)
