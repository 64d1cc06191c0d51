--- xpio.luasocket.common: what TCP and UDP objects share: LuaSocket's error
--- strings, addresses as LuaSocket spells them, name resolution that waits
--- like every other call, timeouts, and socket options.
local xpio = require "xpio"
local wait = require "xpio.luasocket.wait"

local gettime = xpio.gettime
local find, match, gsub, sub = string.find, string.match, string.gsub, string.sub

local M = {}

-- LuaSocket's strings for the errors it names (usocket.c socket_strerror,
-- io.c io_strerror); every other error keeps the C library's text, as there.
local rename = {
  ["Connection refused"] = "connection refused",
  ["Connection reset by peer"] = "closed",
  ["Software caused connection abort"] = "closed",
  ["Broken pipe"] = "closed",
  ["Connection timed out"] = "timeout",
  ["Address already in use"] = "address already in use",
  ["Transport endpoint is already connected"] = "already connected",
  ["Permission denied"] = "permission denied",
  ["xpio: socket is closed"] = "closed",
  ["xpio: end of stream"] = "closed",
}

--- LuaSocket's name for an XPIO error message.
function M.error(message)
  return rename[message] or message
end

--- "1.2.3.4:80", "[::1]:80" -> "1.2.3.4", 80, "inet" (LuaSocket's
--- getsockname/getpeername results).
function M.split(address)
  local host, port = match(address, "^%[(.*)%]:(%d+)$")
  if host then return host, tonumber(port), "inet6" end
  host, port = match(address, "^(.*):(%d+)$")
  if host then return host, tonumber(port), "inet" end
  return address, 0, "unix"
end

--- The XPIO address of host and port (a numeric host), and its family.
function M.join(host, port)
  if find(host, ":", 1, true) then return "[" .. host .. "]:" .. port, "inet6" end
  return host .. ":" .. port, "inet"
end

--- Is `host` an address rather than a name?
function M.numeric(host)
  return find(host, ":", 1, true) ~= nil or match(host, "^%d+%.%d+%.%d+%.%d+$") ~= nil
end

local function when_resolve(args, task)
  return xpio.when_resolve(task, args[1], args[2], args[3])
end

--- Resolve `host` (for `family`: "inet", "inet6" or nil for both) to XPIO
--- addresses with `port`, waiting as a blocking LuaSocket call does (a
--- task yields meanwhile). "*" is the wildcard address of the family.
function M.resolve(host, port, family, deadline)
  port = tostring(tonumber(port) or 0)
  if host == "*" then
    if family == "inet6" then return { "[::]:" .. port } end
    return { "0.0.0.0:" .. port }
  end
  if M.numeric(host) then return { (M.join(host, port)) } end
  local args = { host, port, family }
  while true do
    local list, err = xpio.try_resolve(host, port, family)
    if list then return list end
    if err ~= "retry" then return nil, "host or service not provided, or not known" end
    local ok, werr = wait.wait(args, when_resolve, deadline)
    if not ok then return nil, werr end
  end
end

--- Timeouts, as LuaSocket keeps them (timeout.c): `block` bounds each
--- wait, `total` the whole call; negative means no limit.
--- close(): LuaSocket answers 1, closed or not; the XPIO socket goes once.
function M.close(self)
  local xs = self.xs
  self.closed = true   -- a UDP object makes its socket on first use: not again
  if xs then
    self.xs = nil
    xs:close()
  end
  return 1
end

--- setfd(-1) gives the descriptor up without closing it (LuaSec's wrap
--- takes it over: ssl.wrap calls getfd, then setfd(-1)); setfd(n) makes
--- the object own descriptor n.
function M.setfd(self, fd)
  fd = math.tointeger(fd) or -1
  local xs = self.xs
  if xs then
    self.xs = nil
    xs:detach()
  end
  if fd >= 0 then self.xs = assert(xpio.adopt(fd)) end
end

-- timeout.c reads the value with luaL_optnumber and the mode by its first
-- letter ("b", "t" or "r").
function M.settimeout(self, value, mode)
  value = M.optnumber(value, -1, 1, "settimeout")
  if value < 0 or value ~= value then value = -1 end
  mode = mode == nil and "b" or M.checkstring(mode, 2, "settimeout")
  local letter = sub(mode, 1, 1)
  if letter == "b" then self.block = value
  elseif letter == "t" or letter == "r" then self.total = value
  else error("bad argument #2 to 'settimeout' (invalid timeout mode)", 2) end
  return 1
end

--- LuaSocket's class check (auxiliar.c): every class has every method, and
--- one meant for another class raises, naming the class it needs
--- (`class`: that class's metatable).
function M.expect(self, class, name)
  if getmetatable(self) ~= class then
    error(("calling '%s' on bad self (%s expected)"):format(name, class.__name), 3)
  end
end

-- The argument checks LuaSocket's C functions make (luaL_checkstring,
-- luaL_optnumber), raised at the caller of the method that checks.
local function argerror(n, name, expected, v)
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(n, name, expected, v == nil and "no value" or type(v)), 4)
end

--- A string (a number becomes one), or a raised argument error.
function M.checkstring(v, n, name)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return tostring(v) end
  argerror(n, name, "string", v)
end

--- A number (or a numeric string), `default` for nil, or a raised
--- argument error.
function M.optnumber(v, default, n, name)
  if v == nil then return default end
  local x = tonumber(v)
  if x == nil or (type(v) ~= "number" and type(v) ~= "string") then argerror(n, name, "number", v) end
  return x
end

--- The deadline of the next wait of a call that started at `start`, as
--- timeout.c's timeout_getretry computes it.
function M.deadline(self, start)
  local block, total = self.block, self.total
  if block < 0 and total < 0 then return nil end
  if total < 0 then return gettime() + block end
  if block < 0 then return start + total end
  return math.min(gettime() + block, start + total)
end

--- The start of a call, read only when a timeout needs it.
function M.start(self)
  if self.total >= 0 then return gettime() end
  return 0
end

-- LuaSocket option names -> XPIO's (and how values convert).
local options = {
  ["keepalive"] = "SO_KEEPALIVE",
  ["tcp-nodelay"] = "TCP_NODELAY",
  ["reuseaddr"] = "SO_REUSEADDR",
  ["reuseport"] = "SO_REUSEPORT",
  ["broadcast"] = "SO_BROADCAST",
  ["ipv6-v6only"] = "IPV6_V6ONLY",
  ["tcp-keepidle"] = "TCP_KEEPIDLE",
  ["tcp-keepintvl"] = "TCP_KEEPINTVL",
  ["tcp-keepcnt"] = "TCP_KEEPCNT",
  ["linger"] = "SO_LINGER",
  ["send-buffer-size"] = "SO_SNDBUF",
  ["recv-buffer-size"] = "SO_RCVBUF",
  ["error"] = "SO_ERROR",
}

local BOOLEAN = { SO_KEEPALIVE = true, TCP_NODELAY = true, SO_REUSEADDR = true, SO_REUSEPORT = true,
                  SO_BROADCAST = true, IPV6_V6ONLY = true }
local INT_MAX = (1 << 31) - 1

-- An option's name, checked as options.c checks it (luaL_checkstring,
-- then "unsupported option"), raised at `level` (the method's caller).
-- Arguments are numbered as Lua numbers them in a method call (`s:m(a)`:
-- `a` is #1), as the layer's other checks do.
local function option_of(name, fname, level)
  local t = type(name)
  if t ~= "string" and t ~= "number" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(fname, name == nil and "no value" or t), level + 1)
  end
  local option = options[tostring(name)]
  if not option or (fname == "setoption" and option == "SO_ERROR") then
    error(("bad argument #1 to '%s' (unsupported option `%s')"):format(fname, sub(tostring(name), 1, 35)), level + 1)
  end
  return option
end

--- setoption's arguments, checked as LuaSocket's options.c checks them
--- (raised at the caller of the method that calls this): the XPIO option
--- and the value to set, or that option and nil when no setsockopt could
--- take the value (then "setsockopt failed", as there). A boolean option
--- takes booleans only; an integer option takes anything, as
--- `(int) lua_tonumber` does (not a number: 0; 1.5: 1); linger takes a
--- table with a boolean `on` and a number `timeout`.
function M.checkoption(name, value)
  local option = option_of(name, "setoption", 3)
  if BOOLEAN[option] then
    if type(value) ~= "boolean" then argerror(2, "setoption", "boolean", value) end
    return option, value
  end
  if option == "SO_LINGER" then
    if type(value) ~= "table" then argerror(2, "setoption", "table", value) end
    if type(value.on) ~= "boolean" then error("bad argument #2 to 'setoption' (boolean 'on' field expected)", 3) end
    local timeout = tonumber(value.timeout)
    if not timeout then error("bad argument #2 to 'setoption' (number 'timeout' field expected)", 3) end
    if not value.on then return option, false end
    timeout = math.tointeger(timeout < 0 and math.ceil(timeout) or math.floor(timeout))
    return option, timeout and timeout >= 0 and timeout <= 65535 and timeout or nil   -- a u_short
  end
  local n = (type(value) == "number" or type(value) == "string") and tonumber(value) or 0
  n = math.tointeger(n < 0 and math.ceil(n) or math.floor(n))
  -- XPIO refuses a negative size or count as an argument error; the
  -- kernel refuses most, and LuaSocket reports that as a failure.
  return option, n and n >= 0 and n <= INT_MAX and n or nil
end

--- Sets a checked option (M.checkoption) on XPIO socket `xs`: 1, or nil
--- and LuaSocket's "setsockopt failed".
function M.setoption(xs, option, value)
  if value == nil or not xs:setsockopt(option, value) then return nil, "setsockopt failed" end
  return 1
end

--- getoption(name) on XPIO socket `xs` (nil: no descriptor yet): the
--- value, or nil and LuaSocket's "getsockopt failed". Call it as a tail
--- call of the method: an unknown name raises at the method's caller.
function M.getoption(xs, name)
  local option = option_of(name, "getoption", 2)
  local value = xs and xs:getsockopt(option)
  if value == nil then return nil, "getsockopt failed" end
  if option == "SO_LINGER" then return { on = value ~= false, timeout = value or 0 } end
  if option == "SO_ERROR" then
    if value == 0 then return nil end
    return value
  end
  return value
end

--- LuaSocket drops every CR from a "*l" line, not only the one before LF.
function M.nocr(s)
  if find(s, "\r", 1, true) then return (gsub(s, "\r", "")) end
  return s
end

return M
