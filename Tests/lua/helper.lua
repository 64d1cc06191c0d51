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

package.loaded["helper"] = helper
return helper
