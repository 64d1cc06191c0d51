-- Loaded by busted before every spec file (make test passes --helper).
-- LUA_CPATH points at build/xpio.so and LUA_PATH at lua/ (see the Makefile).
-- Spec files get it with `local helper = require "helper"`.
local helper = {}

--- The interpreter for child interpreters the tests start: XPIO_LUA
--- (check-memory points it at lua5.4 under valgrind), else lua5.4.
helper.LUA = os.getenv("XPIO_LUA") or "lua5.4"

--- The repository root, absolute (this file is Tests/lua/helper.lua).
helper.ROOT = (function()
  local source = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = source:match("^(.*)/Tests/lua/[^/]*$") or "."
  local p = assert(io.popen("cd '" .. root:gsub("'", "'\\''") .. "' && pwd"))
  local absolute = p:read("l")
  p:close()
  return absolute
end)()

--- `s` quoted for sh.
function helper.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- This interpreter's process id.
function helper.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

--- The descriptors process `pid` (default: this one) has open, as a sorted
--- list of numbers. The listing goes to a file through os.execute, so no
--- pipe of ours is open while it is taken.
function helper.fd_list(pid)
  local path = os.tmpname()
  assert(os.execute("ls /proc/" .. (pid or helper.pid()) .. "/fd > " .. path))
  local list = {}
  for line in io.lines(path) do list[#list + 1] = tonumber(line) end
  os.remove(path)
  table.sort(list)
  return list
end

function helper.open_fds() return #helper.fd_list() end

--- The process ids of this process's children (of its main thread).
function helper.children()
  local pid = helper.pid()
  local list = {}
  local f = io.open("/proc/" .. pid .. "/task/" .. pid .. "/children")
  if f then
    for child in (f:read("a") or ""):gmatch("%d+") do list[#list + 1] = tonumber(child) end
    f:close()
  end
  return list
end

function helper.children_count() return #helper.children() end

--- This process's resident set size, in KiB.
function helper.rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)"))
end

--- A scheduler of its own for each test (xpio.sched keeps its state in the
--- module), so that a test that fails with tasks still waiting cannot stall
--- the next one.
function helper.fresh_sched()
  package.loaded["xpio.sched"] = nil
  local sched = require "xpio.sched"
  package.loaded["xpio.sched"] = nil
  return sched
end

--- Runs `sched` until `is_done()` is true, with a watchdog task that
--- raises after `limit` seconds instead of letting a stuck test hang.
function helper.run_until(sched, limit, is_done)
  sched.spawn(function()
    local deadline = sched.now() + limit
    while not is_done() do
      if sched.now() > deadline then error(string.format("timeout: tasks still running after %g s", limit), 0) end
      sched.sleep(0.01)
    end
  end)
  local ok, err = pcall(sched.run)
  assert(ok, err)
end

--- Writes all of `data` to `s` with the blocking `write` (in a task),
--- raising on an error.
function helper.write_all(s, data)
  local at = 1
  while at <= #data do
    at = at + assert(s:write(at == 1 and data or data:sub(at)))
  end
end

--- Is `value` in the array `list`?
function helper.contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

--- True when every task (from sched.spawn) of `tasks` has finished.
function helper.all_done(tasks)
  for _, t in ipairs(tasks) do if not t.done then return false end end
  return true
end

--- Runs each function of `fns` as a task of `sched` until all are done, for
--- at most `limit` seconds; returns the tasks.
function helper.run_tasks(sched, limit, fns)
  local tasks = {}
  for i, fn in ipairs(fns) do tasks[i] = sched.spawn(fn) end
  helper.run_until(sched, limit, function() return helper.all_done(tasks) end)
  return tasks
end

--- A connected TCP pair on loopback, made with try_ calls only: the client
--- and the accepted socket.
function helper.tcp_pair()
  local xpio = require "xpio"
  local q = xpio.tqueue()
  local l = assert(xpio.socket("TCP"))
  assert(l:bind("127.0.0.1:0"))
  assert(l:listen())
  local addr = l:getsockname()
  local c = assert(xpio.socket("TCP"))
  local ok, err = c:try_connect(addr)
  local s
  local deadline = xpio.gettime() + 5
  while not (s and ok) do
    assert(xpio.gettime() < deadline, "tcp_pair: timed out")
    if not ok then
      assert(err == "retry", err)
      ok, err = c:try_connect(addr)
    end
    if not s then
      local e
      s, e = l:try_accept()
      assert(s or e == "retry", e)
    end
    if not (s and ok) then q:wait(0.005) end
  end
  l:close()
  q:close()
  return c, s
end

package.loaded["helper"] = helper
return helper
