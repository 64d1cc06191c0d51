-- Loaded by busted before every spec file (make test passes --helper).
-- LUA_CPATH points at build/xpio.so and LUA_PATH at lua/ (see the Makefile).
-- Spec files get it with `local helper = require "helper"`.
local helper = {}

--- This interpreter's process id.
function helper.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

--- The descriptors this process has open, as a sorted list of numbers. The
--- list includes the one descriptor of the pipe used to read it, so compare
--- counts taken the same way (before and after), not absolute numbers.
function helper.fd_list()
  local list = {}
  local p = assert(io.popen("ls /proc/" .. helper.pid() .. "/fd"))
  for line in p:lines() do list[#list + 1] = tonumber(line) end
  p:close()
  table.sort(list)
  return list
end

function helper.open_fds() return #helper.fd_list() end

package.loaded["helper"] = helper
return helper
