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

--- The descriptors this process has open, as a sorted list of numbers.
--- The listing goes to a file through os.execute, so no pipe of ours is
--- open while it is taken.
function helper.fd_list()
  local path = os.tmpname()
  assert(os.execute("ls /proc/" .. helper.pid() .. "/fd > " .. path))
  local list = {}
  for line in io.lines(path) do list[#list + 1] = tonumber(line) end
  os.remove(path)
  table.sort(list)
  return list
end

function helper.open_fds() return #helper.fd_list() end

package.loaded["helper"] = helper
return helper
