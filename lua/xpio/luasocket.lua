--- xpio.luasocket: LuaSocket's API on XPIO, so that libraries written for
--- LuaSocket (socket.http, redis-lua, ...) run unmodified, concurrently in
--- xpio.sched tasks.
--
--   local socket = require("xpio.luasocket").install() -- require "socket" now returns it
--   local sched = require "xpio.sched"
--   sched.spawn(function() print(require("socket.http").request("http://127.0.0.1:8080/")) end)
--   sched.run()
--
-- Inside an xpio.sched task a call that must wait parks the task, and other
-- tasks run; outside one it blocks on a private task queue, as LuaSocket's
-- own calls block. Results, error strings and timeouts (`settimeout` with
-- "b" and "t") are LuaSocket 3's. The TCP object is in luasocket/tcp.lua,
-- UDP in luasocket/udp.lua, waiting in luasocket/wait.lua.
local xpio = require "xpio"
local wait = require "xpio.luasocket.wait"
local common = require "xpio.luasocket.common"
local tcp = require "xpio.luasocket.tcp"
local udp = require "xpio.luasocket.udp"

local socket = {}

socket._VERSION = "LuaSocket 3.0.0"
socket._XPIO = true
-- select.c's and udp.c's constants. XPIO's select has no FD_SETSIZE: any
-- descriptor may be waited on, so the set size is the largest integer.
socket._SETSIZE = math.maxinteger
socket._SOCKETINVALID = -1
socket._DATAGRAMSIZE = 8192
function socket.__unload() end

-- tcp() and udp() make their descriptor at the first bind or connect,
-- which names the family; the others at once (as LuaSocket's).
function socket.tcp() return tcp.new("master", nil) end
function socket.tcp4() return tcp.open("inet") end
function socket.tcp6() return tcp.open("inet6") end
function socket.udp() return udp.new(nil) end
function socket.udp4() return udp.open("inet") end
function socket.udp6() return udp.open("inet6") end

--- socket.connect(address, port [, laddress, lport, family]): a connected
--- client, or nil and a message.
-- tcp.c's global_connect takes the address and the port with luaL_checkstring.
local function checkstring(v, n)
  if type(v) ~= "string" and type(v) ~= "number" then
    error(("bad argument #%d to 'connect' (string expected, got %s)"):format(n, v == nil and "no value" or type(v)), 3)
  end
end

function socket.connect(address, port, laddress, lport, family)
  checkstring(address, 1)
  checkstring(port, 2)
  local sock = tcp.new("master", family)
  if laddress then
    local ok, err = sock:bind(laddress, lport or 0)
    if not ok then sock:close() return nil, err end
  end
  local ok, err = sock:connect(address, port)
  if not ok then sock:close() return nil, err end
  return sock
end

function socket.connect4(address, port, laddress, lport)
  return socket.connect(address, port, laddress, lport, "inet")
end

function socket.connect6(address, port, laddress, lport)
  return socket.connect(address, port, laddress, lport, "inet6")
end

--- socket.bind(host, port [, backlog]): a listening server with reuseaddr
--- set, as socket.lua makes it.
function socket.bind(host, port, backlog)
  if host == "*" then host = "0.0.0.0" end
  local list, err = common.resolve(host, port, nil)
  if not list then return nil, err end
  for _, address in ipairs(list) do
    local sock = tcp.new("master", address:sub(1, 1) == "[" and "inet6" or "inet")
    sock:setoption("reuseaddr", true)
    local ok
    ok, err = sock:bind(common.split(address))
    if ok then ok, err = sock:listen(backlog) end
    if ok then return sock end
    sock:close()
  end
  return nil, err
end

-- Wall-clock seconds (LuaSocket's gettime is gettimeofday): os.time()
-- at load plus the monotonic time since, so differences are exact and the
-- absolute value is within a second of the system clock's.
local wall_offset = os.time() - xpio.gettime()
function socket.gettime() return wall_offset + xpio.gettime() end

function socket.sleep(seconds)
  seconds = common.optnumber(seconds, nil, 1, "sleep")
  if seconds == nil then error("bad argument #1 to 'sleep' (number expected, got no value)", 2) end
  if seconds > 0 then wait.sleep(seconds) end
end

socket.select = require("xpio.luasocket.select")

socket.dns = require("xpio.luasocket.dns")

require("xpio.luasocket.helpers")(socket)

--- Make `require "socket"` (and "socket.core") return this module, so that
--- libraries written for LuaSocket load it unmodified. Returns the module.
function socket.install()
  package.loaded["socket"] = socket
  package.loaded["socket.core"] = socket
  return socket
end

return socket
