-- Behavioural tests for xpio.spawn and process objects (issue 6): programs,
-- arguments, environment, attributes, exec failures, kill / wait / try_wait,
-- signal dispositions, many children at once, and dropped process objects.
-- Descriptor maps (the `files` argument) are in process_files_spec.lua.
local xpio = require "xpio"
local sched = require "xpio.sched"
sched.onerror(sched.raise) -- a failing assertion in a task fails the test
local helper = require "helper"

local SELF = helper.pid()

-- Run `fn` as a task of the module's scheduler (blocking XPIO calls need
-- one) and return its results. An error inside the task is raised from
-- here. No time limit: sched.run returns once every task has finished.
local function run(fn, ...)
  return helper.run_in_task(sched, nil, fn, ...)
end

local read_all = helper.read_all

-- Spawn with stdout (and stderr) on pipes; inside a task. Returns
-- out, err, how, code; or nil, message when spawn fails.
local function capture(args, env, attrs)
  local r1, w1 = assert(xpio.pipe())
  local r2, w2 = assert(xpio.pipe())
  local p, msg = xpio.spawn(args, env, { [1] = w1, [2] = w2 }, attrs)
  if not p then
    r1:close(); r2:close(); w1:close(); w2:close()
    return nil, msg
  end
  local out = read_all(r1)
  local err = read_all(r2)
  local how, code = p:wait()
  return out, err, how, code
end

local function sorted_lines(s)
  local t = {}
  for line in s:gmatch("[^\n]+") do t[#t + 1] = line end
  table.sort(t)
  return t
end

-- This file counts the children of every thread of this process, not
-- only the main thread's.
local EVERY_THREAD = true

local function new_children(before) return helper.new_children(before, EVERY_THREAD) end

local stat = helper.proc_stat

local function status_field(pid, name)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local value
  for line in f:lines() do
    local k, v = line:match("^([%w_]+):%s*(.-)%s*$")
    if k == name then value = v end
  end
  f:close()
  return value
end

local wait_exec = helper.wait_exec
local pause = helper.nap

local function tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir '" .. path .. "'"))
  return path
end

local function rmtree(path)
  assert(path:match("^/tmp/"), "refusing to remove " .. path)
  os.execute("rm -rf '" .. path .. "'")
end

local function write_file(path, contents, mode)
  local f = assert(io.open(path, "w"))
  f:write(contents)
  f:close()
  if mode then assert(os.execute("chmod " .. mode .. " '" .. path .. "'")) end
end

describe("xpio.spawn: programs and arguments", function()
  it("runs echo and its stdout arrives through a pipe", function()
    run(function()
      local r, w = assert(xpio.pipe())
      local p = assert(xpio.spawn({ "echo", "hello", "world" }, xpio.env, { [1] = w }))
      assert.are.equal("xpio.process", getmetatable(p).__name)
      assert.are.equal("hello world\n", read_all(r))
      assert.are.same({ "exit", 0 }, { p:wait() })
    end)
  end)

  it("pipes data through grep, stdin and stdout both pipes", function()
    run(function()
      local in_r, in_w = assert(xpio.pipe())
      local out_r, out_w = assert(xpio.pipe())
      local p = assert(xpio.spawn({ "grep", "an" }, xpio.env, { [0] = in_r, [1] = out_w }))
      local text = "apple\nbanana\ncherry\nmango\norange\n"
      helper.write_all(in_w, text)
      assert.is_true(in_w:close())
      assert.are.equal("banana\nmango\norange\n", read_all(out_r))
      assert.are.same({ "exit", 0 }, { p:wait() })
    end)
  end)

  it("passes args[1..n] as argv[0..n-1], spaces and empty strings intact", function()
    run(function()
      local out, err, how, code = capture({ "sh", "-c", 'printf "<%s>" "$0" "$#" "$@"', "zero", "a b", "", "c" }, xpio.env)
      assert.are.equal("<zero><3><a b><><c>", out)
      assert.are.equal("", err)
      assert.are.same({ "exit", 0 }, { how, code })
    end)
  end)

  it("attrs.exe overrides the program while args[1] stays argv[0]", function()
    run(function()
      local out, _, how, code = capture({ "myname", "-c", "echo $0" }, xpio.env, { exe = "/bin/sh" })
      assert.are.equal("myname\n", out)
      assert.are.same({ "exit", 0 }, { how, code })
    end)
  end)

  it("searches PATH for attrs.exe without a slash", function()
    run(function()
      local out = capture({ "othername", "-c", "echo $0" }, xpio.env, { exe = "sh" })
      assert.are.equal("othername\n", out)
    end)
  end)

  it("searches PATH for args[1] without a slash", function()
    run(function()
      assert.are.equal("found\n", (capture({ "echo", "found" }, xpio.env)))
    end)
  end)

  it("searches the parent's PATH even when the child's env has none", function()
    run(function()
      assert.are.equal("no-path\n", (capture({ "echo", "no-path" }, {})))
      assert.are.equal("nil-env\n", (capture({ "echo", "nil-env" }, nil)))
    end)
  end)

  it("process:pid() is the child's integer pid, and we are its parent", function()
    local r, w = assert(xpio.pipe())
    local out_r, out_w = assert(xpio.pipe())
    local p = assert(xpio.spawn({ "cat" }, xpio.env, { [0] = r, [1] = out_w }))
    local pid = p:pid()
    assert.are.equal("integer", math.type(pid))
    assert.is_true(pid > 0)
    wait_exec(pid, "cat")
    assert.are.equal(SELF, stat(pid).ppid)
    w:close()
    assert.are.same({ "", "exit", 0 }, { run(function() return read_all(out_r), p:wait() end) })
  end)
end)

describe("xpio.spawn: environment", function()
  it("gives the child exactly the env table", function()
    run(function()
      local out, _, how, code = capture({ "/usr/bin/env" }, { A = "1", B = "two", C = "x=y z" })
      assert.are.same({ "A=1", "B=two", "C=x=y z" }, sorted_lines(out))
      assert.are.same({ "exit", 0 }, { how, code })
    end)
  end)

  it("gives an empty environment for a nil or empty env", function()
    run(function()
      assert.are.equal("", (capture({ "/usr/bin/env" }, nil)))
      assert.are.equal("", (capture({ "/usr/bin/env" }, {})))
    end)
  end)

  it("passes xpio.env through unchanged", function()
    run(function()
      local expected = {}
      for k, v in pairs(xpio.env) do
        if not v:find("\n", 1, true) then expected[#expected + 1] = k .. "=" .. v end
      end
      table.sort(expected)
      local got = {}
      for _, line in ipairs(sorted_lines((capture({ "/usr/bin/env" }, xpio.env)))) do
        if line:find("=", 1, true) then got[#got + 1] = line end
      end
      assert.are.same(expected, got)
    end)
  end)

  it("raises a Lua error naming spawn for bad names, values and arguments", function()
    local before = helper.children(EVERY_THREAD)
    local cases = {
      { { "env" }, { ["A=B"] = "1" } },
      { { "env" }, { ["A\0B"] = "1" } },
      { { "env" }, { [""] = "1" } },
      { { "env" }, { A = "x\0y" } },
      { { "echo", "a\0b" }, {} },
      { { "ec\0ho", "a" }, {} },
    }
    for i, case in ipairs(cases) do
      local ok, err = pcall(xpio.spawn, case[1], case[2])
      assert.is_false(ok, "case " .. i .. " did not raise")
      assert.is_string(err)
      assert.truthy(err:find("spawn", 1, true), "case " .. i .. ": " .. tostring(err))
    end
    assert.are.same({}, new_children(before))
  end)
end)

describe("xpio.spawn: attributes", function()
  it("attrs.cwd sets the child's working directory", function()
    local dir = tmpdir()
    finally(function() rmtree(dir) end)
    run(function()
      local out, _, how, code = capture({ "/bin/pwd" }, xpio.env, { cwd = dir })
      assert.are.equal(dir .. "\n", out)
      assert.are.same({ "exit", 0 }, { how, code })
    end)
  end)

  it("resolves a relative exe against attrs.cwd", function()
    local dir = tmpdir()
    finally(function() rmtree(dir) end)
    write_file(dir .. "/prog", "#!/bin/sh\necho ran \"$0\"\n/bin/pwd\n", "755")
    run(function()
      local out = capture({ "./prog" }, xpio.env, { cwd = dir })
      assert.are.equal("ran ./prog\n" .. dir .. "\n", out)
    end)
  end)

  it("a missing cwd fails with nil, message and leaves no child", function()
    local before = helper.children(EVERY_THREAD)
    local p, err = xpio.spawn({ "/bin/true" }, xpio.env, nil, { cwd = "/nonexistent/xpio-no-such-dir" })
    assert.is_nil(p)
    assert.are.equal("No such file or directory", err)
    assert.are.same({}, new_children(before))
  end)

  it("without attrs the child stays in our process group and session", function()
    local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env))
    finally(function() p:kill(); run(function() return p:wait() end) end)
    wait_exec(p:pid(), "sleep")
    local mine, child = stat(SELF), stat(p:pid())
    assert.are.equal(mine.pgrp, child.pgrp)
    assert.are.equal(mine.session, child.session)
  end)

  it("attrs.pgroup = true makes the child lead a new process group", function()
    local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env, nil, { pgroup = true }))
    finally(function() p:kill(); run(function() return p:wait() end) end)
    wait_exec(p:pid(), "sleep")
    local st = stat(p:pid())
    assert.are.equal(p:pid(), st.pgrp)
    assert.are.equal(stat(SELF).session, st.session)
  end)

  it("attrs.pgroup = <process> puts the child in that process's group", function()
    local leader = assert(xpio.spawn({ "sleep", "10" }, xpio.env, nil, { pgroup = true }))
    local member = assert(xpio.spawn({ "sleep", "10" }, xpio.env, nil, { pgroup = leader }))
    finally(function()
      leader:kill(); member:kill()
      run(function() leader:wait(); member:wait() end)
    end)
    wait_exec(member:pid(), "sleep")
    assert.are.equal(leader:pid(), stat(member:pid()).pgrp)
    assert.are_not.equal(member:pid(), stat(member:pid()).pgrp)
  end)

  it("attrs.setsid = true makes the child lead a new session and group", function()
    local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env, nil, { setsid = true }))
    finally(function() p:kill(); run(function() return p:wait() end) end)
    wait_exec(p:pid(), "sleep")
    local st = stat(p:pid())
    assert.are.equal(p:pid(), st.session)
    assert.are.equal(p:pid(), st.pgrp)
  end)
end)

describe("xpio.spawn: exec failures", function()
  it("a nonexistent program returns nil, 'No such file or directory' and leaves no child", function()
    collectgarbage()
    collectgarbage()
    local before = helper.children(EVERY_THREAD)
    local fds = helper.fd_list()
    local p, err = xpio.spawn({ "/nonexistent/xpio-no-such-program" }, xpio.env)
    assert.is_nil(p)
    assert.are.equal("No such file or directory", err)
    p, err = xpio.spawn({ "xpio-no-such-program-in-path" }, xpio.env)
    assert.is_nil(p)
    assert.are.equal("No such file or directory", err)
    p, err = xpio.spawn({ "x" }, xpio.env, nil, { exe = "xpio-no-such-program-in-path" })
    assert.is_nil(p)
    assert.are.equal("No such file or directory", err)
    collectgarbage()
    collectgarbage()
    assert.are.same({}, new_children(before))
    assert.are.same(fds, helper.fd_list())
  end)

  it("a failed spawn leaves the sockets named in files open and non-blocking", function()
    local r, w = assert(xpio.pipe())
    local p, err = xpio.spawn({ "/nonexistent/xpio-no-such-program" }, xpio.env, { [1] = w })
    assert.is_nil(p)
    assert.are.equal("No such file or directory", err)
    assert.is_true(w:getsockopt("O_NONBLOCK"))
    -- so a full pipe answers retry instead of blocking the interpreter
    local written = 0
    while true do
      local n, msg = w:try_write(string.rep("x", 4096))
      if not n then
        assert.are.equal("retry", msg)
        break
      end
      written = written + n
      assert.is_true(written < 16 * 1024 * 1024, "the pipe never filled")
    end
    r:close()
    w:close()
  end)

  it("a fork refused by RLIMIT_NPROC is an error, never \"retry\"", function()
    -- EAGAIN from fork means "no more processes", and spawn has no when_
    -- partner to wait on. Needs root to run the child as nobody (root
    -- itself ignores RLIMIT_NPROC).
    local user = io.popen("id -u"):read("l")
    local tools = os.execute("command -v setpriv >/dev/null && command -v prlimit >/dev/null")
    if user ~= "0" or not tools then
      pending("needs root, setpriv and prlimit")
      return
    end
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    write_file(path, [[
      local xpio = require "xpio"
      local kids, refused = {}, nil
      for _ = 1, 8 do
        local p, err = xpio.spawn({ "/bin/sleep", "5" }, {})
        if p then kids[#kids + 1] = p else refused = err break end
      end
      for _, p in ipairs(kids) do p:kill() end
      print(refused)
    ]], "644")
    local out = helper.run_command("setpriv --reuid=65534 --regid=65534 --clear-groups prlimit --nproc=4 "
      .. helper.shell_quote(helper.LUA) .. " " .. helper.shell_quote(path))
    assert.are.equal("Resource temporarily unavailable\n", out)
  end)

  it("a file without execute permission returns nil, 'Permission denied'", function()
    local path = os.tmpname()
    finally(function() os.remove(path) end)
    write_file(path, "#!/bin/sh\necho should not run\n", "644")
    local before = helper.children(EVERY_THREAD)
    local p, err = xpio.spawn({ path }, xpio.env)
    assert.is_nil(p)
    assert.are.equal("Permission denied", err)
    assert.are.same({}, new_children(before))
  end)
end)

describe("process: kill, wait, try_wait", function()
  it("kill() sends SIGKILL: wait gives 'signal', 9", function()
    local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env))
    assert.is_true(p:kill())
    assert.are.same({ "signal", 9 }, { run(function() return p:wait() end) })
  end)

  it("kill accepts 'TERM', 'SIGTERM' and 15", function()
    for _, sig in ipairs({ "TERM", "SIGTERM", 15 }) do
      local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env))
      wait_exec(p:pid(), "sleep")
      assert.is_true(p:kill(sig))
      assert.are.same({ "signal", 15 }, { run(function() return p:wait() end) }, "kill(" .. tostring(sig) .. ")")
    end
  end)

  it("kill on a process that exited and was waited returns nil, message", function()
    local p = assert(xpio.spawn({ "/bin/true" }, xpio.env))
    assert.are.same({ "exit", 0 }, { run(function() return p:wait() end) })
    local ok, err = p:kill()
    assert.is_nil(ok)
    assert.are.equal("No such process", err)
    ok, err = p:kill("TERM")
    assert.is_nil(ok)
    assert.is_string(err)
  end)

  it("kill on a process that exited but was not waited for returns nil, message", function()
    local p = assert(xpio.spawn({ "/bin/true" }, xpio.env))
    local pid = p:pid()
    for _ = 1, 200 do
      if helper.has_exited(pid) then break end
      pause(0.01)
    end
    pause(0.05)
    local ok, err = p:kill()
    assert.is_nil(ok)
    assert.are.equal("No such process", err)
    assert.are.same({ "exit", 0 }, { run(function() return p:wait() end) })
  end)

  it("reports exit codes 0, 1, 7 and 255", function()
    run(function()
      for _, n in ipairs({ 0, 1, 7, 255 }) do
        local p = assert(xpio.spawn({ "sh", "-c", "exit " .. n }, xpio.env))
        assert.are.same({ "exit", n }, { p:wait() })
      end
    end)
  end)

  it("try_wait returns nil, 'retry' while running and the same status once known", function()
    local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env))
    assert.are.same({ nil, "retry" }, { p:try_wait() })
    pause(0.05)
    assert.are.same({ nil, "retry" }, { p:try_wait() })
    assert.is_true(p:kill())
    assert.are.same({ "signal", 9 }, { run(function() return p:wait() end) })
    assert.are.same({ "signal", 9 }, { p:try_wait() })
    assert.are.same({ "signal", 9 }, { p:try_wait() })
    assert.are.same({ "signal", 9 }, { run(function() return p:wait() end) })
  end)

  it("try_wait alone eventually sees the exit status", function()
    local p = assert(xpio.spawn({ "sh", "-c", "exit 3" }, xpio.env))
    local how, code
    for _ = 1, 500 do
      how, code = p:try_wait()
      if how then break end
      assert.are.equal("retry", code)
      pause(0.01)
    end
    assert.are.same({ "exit", 3 }, { how, code })
    assert.are.same({ "exit", 3 }, { p:try_wait() })
    assert.are.same({ "exit", 3 }, { run(function() return p:wait() end) })
  end)

  it("a blocking wait really waits for the child", function()
    run(function()
      local t0 = xpio.gettime()
      local p = assert(xpio.spawn({ "sleep", "0.2" }, xpio.env))
      assert.are.same({ "exit", 0 }, { p:wait() })
      assert.is_true(xpio.gettime() - t0 >= 0.15)
    end)
  end)
end)

describe("process: waiting without a scheduler, and alongside other code", function()
  it("when_wait makes a task ready once the child exits", function()
    local q = xpio.tqueue()
    local p = assert(xpio.spawn({ "sleep", "0.1" }, xpio.env))
    local task = { _queue = q }
    assert.is_true(p:when_wait(task))
    assert.is_function(task._dequeue)
    local ready = q:wait(5)
    assert.are.equal(1, #ready)
    assert.are.equal(task, ready[1])
    assert.is_nil(task._dequeue)
    assert.are.same({ "exit", 0 }, { p:try_wait() })
    -- Once the status is known, when_wait makes the task ready at once.
    assert.is_true(p:when_wait(task))
    ready = q:wait(1)
    assert.are.equal(1, #ready)
    assert.are.equal(task, ready[1])
  end)

  it("several tasks waiting on one process all get its status", function()
    local p = assert(xpio.spawn({ "sh", "-c", "sleep 0.1; exit 5" }, xpio.env))
    local got = {}
    run(function()
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = sched.spawn(function() got[i] = { p:wait() } end)
      end
      for i = 1, 3 do sched.join(tasks[i]) end
    end)
    for i = 1, 3 do assert.are.same({ "exit", 5 }, got[i], "waiter " .. i) end
  end)

  it("installs no SIGCHLD handler and never reaps children it did not start", function()
    local popen = assert(io.popen("sleep 0.3; echo from-popen"))
    run(function()
      for _ = 1, 5 do
        local p = assert(xpio.spawn({ "sh", "-c", "exit 2" }, xpio.env))
        assert.are.same({ "exit", 2 }, { p:wait() })
      end
      sched.sleep(0.4)
    end)
    local caught = tonumber(status_field(SELF, "SigCgt"), 16)
    if helper.sigchld_pipe() then
      -- the fallback's handler, which chains to any other one
      assert.are_not.equal(0, caught & (1 << 16), "the SIGCHLD fallback installed no handler")
    else
      assert.are.equal(0, caught & (1 << 16), "SIGCHLD (17) has a handler")
    end
    assert.are.equal("from-popen\n", popen:read("a"))
    assert.are.same({ true, "exit", 0 }, { popen:close() })
  end)
end)

describe("xpio.spawn: signal state of the child", function()
  it("XPIO ignores SIGPIPE in this process", function()
    local ign = tonumber(status_field(SELF, "SigIgn"), 16)
    assert.are_not.equal(0, ign & (1 << 12), "SIGPIPE (13) not ignored in the parent")
  end)

  it("the child has SIGPIPE and the standard and real-time signals at their defaults, none blocked", function()
    local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env))
    finally(function() p:kill(); run(function() return p:wait() end) end)
    wait_exec(p:pid(), "sleep")
    local ign = tonumber(status_field(p:pid(), "SigIgn"), 16)
    local blk = tonumber(status_field(p:pid(), "SigBlk"), 16)
    assert.are.equal(0, ign & (1 << 12), "SIGPIPE ignored in the child")
    -- Signals 1..31 and SIGRTMIN (34) upward; 32 and 33 are glibc-internal.
    local user_signals = ~(3 << 31)
    assert.are.equal(0, ign & user_signals, string.format("SigIgn %016x", ign))
    assert.are.equal(0, blk, string.format("SigBlk %016x", blk))
  end)

  it("the child's SigIgn and SigBlk are exactly zero", function()
    local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env))
    finally(function() p:kill(); run(function() return p:wait() end) end)
    wait_exec(p:pid(), "sleep")
    assert.are.equal("0000000000000000", status_field(p:pid(), "SigIgn"))
    assert.are.equal("0000000000000000", status_field(p:pid(), "SigBlk"))
  end)

  it("a pipeline in the child ends quietly by SIGPIPE (yes | head -n 1)", function()
    run(function()
      local out, err, how, code = capture({ "sh", "-c", "yes | head -n 1" }, xpio.env)
      assert.are.equal("y\n", out)
      assert.are.equal("", err)
      assert.are.same({ "exit", 0 }, { how, code })
    end)
  end)
end)

describe("process:when_wait", function()
  it("does not wake for another child's exit that came before it", function()
    -- Without pidfds (the SIGCHLD pipe is shared), the exit of a child an
    -- earlier test left behind would wake the task rightly: let them end first.
    local limit = xpio.gettime() + 10
    while #helper.children(true) > 0 and xpio.gettime() < limit do helper.nap(0.05) end
    local q = xpio.tqueue()
    local other = assert(xpio.spawn({ "true" }, xpio.env))
    -- other has exited (a zombie, not reaped): without pidfds its news
    -- waits in the SIGCHLD pipe before p is waited on
    local exited_by = xpio.gettime() + 10
    while not helper.has_exited(other:pid()) and xpio.gettime() < exited_by do helper.nap(0.01) end
    assert.is_true(helper.has_exited(other:pid()))
    helper.nap(0.05) -- (the signal is pending once it is a zombie: delivered by now)
    local p = assert(xpio.spawn({ "sleep", "0.5" }, xpio.env))
    local task = { _queue = q }
    assert.is_true(p:when_wait(task))
    local ready = q:wait(5)
    assert.are.equal(task, ready[1])
    assert.are.same({ "exit", 0 }, { p:try_wait() })
    assert.are.same({ "exit", 0 }, { other:try_wait() })
  end)
end)

describe("process:close", function()
  it("lets go of the child: pid, tostring and every method say it is closed, and no zombie is left", function()
    local p = assert(xpio.spawn({ "true" }, xpio.env))
    local pid = p:pid()
    assert.is_true(pid > 0)
    assert.truthy(tostring(p):find("pid " .. pid, 1, true))
    assert.is_true(p:close())
    assert.are.equal("xpio.process: closed", tostring(p))
    for _, call in ipairs({ "pid", "close", "kill", "try_wait" }) do
      assert.are.same({ nil, "xpio: process is closed" }, { p[call](p) }, call)
    end
    for _, call in ipairs({ "when_wait", "when_stop" }) do
      local task = { _queue = xpio.tqueue() }
      assert.are.same({ nil, "xpio: process is closed" }, { p[call](p, task) }, call)
      assert.is_nil(task._dequeue, call .. " scheduled a task of a closed process")
    end
    -- Reaped means gone from /proc: a zombie stays until someone reaps it.
    -- Up to 10 s, for a loaded machine, where `true` may not have run yet
    -- when close handed it to the reaper thread.
    local state
    local deadline = xpio.gettime() + 10
    repeat
      helper.nap(0.02)
      local f = io.open("/proc/" .. pid .. "/stat")
      state = f and f:read("a"):match("^%d+ %b() (%a)")
      if f then f:close() end
    until state == nil or xpio.gettime() > deadline
    assert.is_nil(state, "the closed child was not reaped (state " .. tostring(state) .. ")")
  end)
end)

describe("process: many children and dropped objects", function()
  it("200 children spawned and waited concurrently leave no zombie and no descriptor", function()
    collectgarbage()
    collectgarbage()
    local before = helper.children(EVERY_THREAD)
    local fds = helper.fd_list()
    local results, tasks = {}, {}
    run(function()
      for i = 1, 200 do
        tasks[i] = sched.spawn(function()
          local args
          if i % 4 == 0 then
            args = { "sleep", "0.2" }
          else
            args = { "sh", "-c", "exit " .. (i % 256) }
          end
          local p = assert(xpio.spawn(args, xpio.env))
          local how, code = p:wait()
          results[i] = { how, code }
        end)
      end
      for i = 1, 200 do sched.join(tasks[i]) end
    end)
    for i = 1, 200 do
      local expected = (i % 4 == 0) and 0 or (i % 256)
      assert.are.same({ "exit", expected }, results[i], "child " .. i)
    end
    collectgarbage()
    collectgarbage()
    assert.are.same({}, new_children(before))
    assert.are.same(fds, helper.fd_list())
  end)

  it("a closed process answers nil, message, and its collection reaps nothing twice", function()
    local before = helper.children(EVERY_THREAD)
    local pid
    do
      local p <close> = assert(xpio.spawn({ "sleep", "0.2" }, xpio.env))
      pid = p:pid()
      assert.are.same({ nil, "retry" }, { p:try_wait() })
    end
    collectgarbage()
    collectgarbage()
    local p = assert(xpio.spawn({ "true" }, xpio.env))
    do local closing <close> = p end   -- luacheck: no unused
    assert.are.same({ nil, "xpio: process is closed" }, { p:try_wait() })
    assert.are.same({ nil, "xpio: process is closed" }, { p:kill() })
    assert.are.same({ nil, "xpio: process is closed" }, { p:try_stop() })
    run(function() sched.sleep(0.4) end)
    assert.are.same({}, new_children(before))
    assert.is_nil(stat(pid), "pid " .. pid .. " still exists")
  end)

  it("dropping a process object neither kills the child nor leaves a zombie", function()
    local marker = os.tmpname()
    os.remove(marker)
    finally(function() os.remove(marker) end)
    local before = helper.children(EVERY_THREAD)
    local pid
    do
      local p = assert(xpio.spawn({ "sh", "-c", "sleep 0.2; echo done > '" .. marker .. "'" }, xpio.env))
      pid = p:pid()
    end
    collectgarbage()
    collectgarbage()
    run(function() sched.sleep(0.5) end)
    local f = io.open(marker)
    assert.is_not_nil(f, "the dropped child was killed before it finished")
    assert.are.equal("done\n", f:read("a"))
    f:close()
    assert.are.same({}, new_children(before))
    assert.is_nil(stat(pid), "pid " .. pid .. " still exists")
  end)
end)
