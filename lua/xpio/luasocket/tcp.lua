--- xpio.luasocket.tcp: LuaSocket's TCP object (master, client, server) on
--- an XPIO socket.
--
-- Every call tries the XPIO `try_` function first and waits (wait.lua) only
-- when it answers "retry", so a call that can complete costs what XPIO's
-- own does. Results and error strings are LuaSocket's (tcp.c, buffer.c):
-- 1 for success, `nil, "closed"` / `"timeout"` / `"connection refused"`,
-- and the bytes received so far as third value of a failed `receive`.
local xpio = require "xpio"
local wait = require "xpio.luasocket.wait"
local common = require "xpio.luasocket.common"

local waitfor, readable, writable = wait.wait, wait.readable, wait.writable
local deadline, start_of, err_of = common.deadline, common.start, common.error
local nocr = common.nocr
local concat, sub = table.concat, string.sub

local M = {}

local methods = {}   -- every method; each class's metatable picks its own
local classes = {}   -- "master" | "client" | "server" -> metatable

local MAXLINE = 1 << 40  -- LuaSocket has no line limit; XPIO's readline takes one

local function new(kind, family, xs)
  return setmetatable({ xs = xs, family = family, block = -1, total = -1 }, classes[kind])
end
M.new = new

-- The XPIO socket of `self`, made for `family` at the first bind or connect
-- when the object was created without one (`socket.tcp()`), with the
-- options set before then.
local function ensure(self, family)
  local xs = self.xs
  if xs then return xs end
  local err
  xs, err = xpio.socket("TCP", family)
  if not xs then return nil, err_of(err) end
  self.xs, self.family = xs, family
  for _, option in ipairs(self.pending or {}) do common.setoption(xs, option[1], option[2]) end
  self.pending = nil
  return xs
end

-- What an XPIO socket still holds of a receive that timed out: LuaSocket
-- returns those bytes as the third value, consumed. A raw read takes the
-- bytes a buffered read kept before asking the kernel.
local function leftover(xs, limit)
  local parts, got = {}, 0
  while got < limit do
    local data = xs:try_read(math.min(limit - got, 65536))
    if not data then break end
    parts[#parts + 1] = data
    got = got + #data
    if #data < 65536 then break end
  end
  return concat(parts)
end

local function receive_line(self, xs, prefix)
  local start = start_of(self)
  while true do
    local line, err, partial = xs:try_readline(false, MAXLINE)
    if line then return prefix .. nocr(line) end
    if err ~= "retry" then
      if line == nil and err == nil then return nil, "closed", prefix end
      return nil, err_of(err), prefix .. nocr(partial or "")
    end
    local ok, werr = waitfor(xs, readable, deadline(self, start))
    if not ok then return nil, err_of(werr), prefix .. nocr(leftover(xs, MAXLINE)) end
  end
end

local function receive_size(self, xs, size, prefix)
  if size <= 0 then return prefix end
  local start = start_of(self)
  while true do
    local data, err, partial = xs:try_readexactly(size)
    if data then return prefix .. data end
    if err ~= "retry" then
      if data == nil and err == nil then return nil, "closed", prefix end
      return nil, err_of(err), prefix .. (partial or "")
    end
    local ok, werr = waitfor(xs, readable, deadline(self, start))
    if not ok then return nil, err_of(werr), prefix .. leftover(xs, size) end
  end
end

-- "*a": everything up to the end of the stream; LuaSocket answers "closed"
-- only when the stream ended before a single byte (buffer.c recvall).
local function receive_all(self, xs, prefix)
  local start = start_of(self)
  local parts = { prefix }
  local got = 0
  while true do
    local data, err = xs:try_read(65536)
    if data then
      parts[#parts + 1] = data
      got = got + #data
    elseif err == "retry" then
      local ok, werr = waitfor(xs, readable, deadline(self, start))
      if not ok then return nil, err_of(werr), concat(parts) end
    elseif err == nil then
      if got == 0 then return nil, "closed", prefix end
      return concat(parts)
    else
      return nil, err_of(err), concat(parts)
    end
  end
end

function methods:receive(pattern, prefix)
  local xs = self.xs
  prefix = prefix and tostring(prefix) or ""
  pattern = pattern or "*l"
  -- As buffer.c reads it: a number of bytes (not negative), or a string
  -- starting "*l" or "*a"; anything else raises.
  local size = tonumber(pattern)
  local p = not size and type(pattern) == "string" and sub(pattern, 1, 1) == "*" and sub(pattern, 2, 2)
  if (size and size < 0) or (not size and p ~= "l" and p ~= "a") then
    error("bad argument #1 to 'receive' (invalid receive pattern)", 2)
  end
  if not xs then return nil, "closed", prefix end
  -- The size counts the prefix's bytes too (buffer.c).
  if size then return receive_size(self, xs, math.tointeger(size // 1) - #prefix, prefix) end
  if p == "l" then return receive_line(self, xs, prefix) end
  return receive_all(self, xs, prefix)
end

--- send(data, i, j): LuaSocket's result is the index of the last byte sent
--- (i - 1 + count), also as third value when it fails.
function methods:send(data, i, j)
  if type(data) == "number" then data = tostring(data) end
  if type(data) ~= "string" then error("bad argument #1 to 'send' (string expected, got " .. type(data) .. ")", 2) end
  local len = #data
  i, j = math.tointeger(i or 1) or 1, math.tointeger(j or -1) or -1
  if i < 0 then i = len + i + 1 end
  if j < 0 then j = len + j + 1 end
  if i < 1 then i = 1 end
  if j > len then j = len end
  local xs = self.xs
  if not xs then return nil, "closed", i - 1 end
  if i > j then return i - 1 end
  local piece = (i == 1 and j == len) and data or sub(data, i, j)
  local total, sent, start = #piece, 0, nil
  while true do
    local n, err = xs:try_write(sent == 0 and piece or sub(piece, sent + 1))
    if n then
      sent = sent + n
      if sent >= total then return i - 1 + sent end
    elseif err == "retry" then
      start = start or start_of(self)
      local ok, werr = waitfor(xs, writable, deadline(self, start))
      if not ok then return nil, err_of(werr), i - 1 + sent end
    else
      return nil, err_of(err), i - 1 + sent
    end
  end
end

-- Connect `xs` to one address, waiting for the handshake.
local function connect_one(self, xs, address, start)
  while true do
    local ok, err = xs:try_connect(address)
    if ok then return true end
    if err ~= "retry" then return nil, err_of(err) end
    local woke, werr = waitfor(xs, writable, deadline(self, start))
    if not woke then return nil, err_of(werr) end
  end
end

function methods:connect(host, port)
  host = tostring(host)
  local start = start_of(self)
  local list, err = common.resolve(host, port, self.family, deadline(self, start))
  if not list then return nil, err end
  for _, address in ipairs(list) do
    local family = self.family or (address:sub(1, 1) == "[" and "inet6" or "inet")
    local fresh = self.xs == nil
    local xs
    xs, err = ensure(self, family)
    if not xs then return nil, err end
    local ok
    ok, err = connect_one(self, xs, address, start)
    if ok then
      setmetatable(self, classes.client)
      return 1
    end
    -- Only a socket made for this address is dropped for the next one.
    if err == "timeout" or not fresh then return nil, err end
    xs:close()
    self.xs = nil
  end
  return nil, err
end

function methods:bind(host, port)
  local list, err = common.resolve(tostring(host), port, self.family, deadline(self, start_of(self)))
  if not list then return nil, err end
  for _, address in ipairs(list) do
    local xs
    xs, err = ensure(self, self.family or (address:sub(1, 1) == "[" and "inet6" or "inet"))
    if not xs then return nil, err end
    local ok
    ok, err = xs:bind(address)
    if ok then return 1 end
    err = err_of(err)
  end
  return nil, err
end

function methods:listen(backlog)
  local xs, err = ensure(self, self.family or "inet")
  if not xs then return nil, err end
  local ok
  ok, err = xs:listen(math.tointeger(backlog or 32) or 32)
  if not ok then return nil, err_of(err) end
  setmetatable(self, classes.server)
  return 1
end

function methods:accept()
  local xs = self.xs
  if not xs then return nil, "closed" end
  local start = start_of(self)
  while true do
    local conn, err = xs:try_accept()
    if conn then return new("client", self.family, conn) end
    if err ~= "retry" then return nil, err_of(err) end
    local ok, werr = waitfor(xs, readable, deadline(self, start))
    if not ok then return nil, err_of(werr) end
  end
end

methods.close = common.close

function methods:shutdown(how)
  local xs = self.xs
  if not xs then return nil, "closed" end
  how = how or "both"
  local what = ({ both = "rw", send = "w", receive = "r" })[how]
  if not what then error("bad argument #1 to 'shutdown' (invalid option '" .. tostring(how) .. "')", 2) end
  local ok, err = xs:shutdown(what)
  if not ok then return nil, err_of(err) end
  return 1
end

local function name(self, which)
  local xs = self.xs
  if not xs then return nil, "Bad file descriptor" end
  local address, err = xs[which](xs)
  if not address then return nil, err end
  return common.split(address)
end

-- LuaSocket's getsockname port is a string and getpeername's an integer
-- (inet.c pushes one as getnameinfo wrote it and converts the other).
function methods:getsockname()
  local host, port, family = name(self, "getsockname")
  if not host then return nil, port end
  return host, tostring(port), family
end

function methods:getpeername()
  return name(self, "getpeername")
end

methods.settimeout = common.settimeout
function methods:gettimeout() return self.block, self.total end

function methods:setoption(option, value)
  local xs = self.xs
  if not xs then
    -- `socket.tcp()` has no descriptor before bind or connect: keep the
    -- option for then (LuaSocket answers "Bad file descriptor" here).
    self.pending = self.pending or {}
    self.pending[#self.pending + 1] = { option, value }
    return 1
  end
  return common.setoption(xs, option, value)
end

function methods:getoption(option)
  local xs = self.xs
  if not xs then return nil, "Bad file descriptor" end
  return common.getoption(xs, option)
end

--- Bytes this object holds that the kernel no longer has (socket.select
--- counts them as readable). Needs socket:buffered() in xpio.so.
function methods:dirty()
  local xs = self.xs
  if not xs or not xs.buffered then return false end
  return (xs:buffered() or 0) > 0
end

function methods:getfd()
  local xs = self.xs
  return xs and xs:fileno() or -1
end

--- setfd(-1) gives the descriptor up without closing it (LuaSec's wrap
--- takes it over: ssl.wrap calls getfd, then setfd(-1)); setfd(n) makes
--- this object own descriptor n.
function methods:setfd(fd)
  fd = math.tointeger(fd) or -1
  local xs = self.xs
  if xs then
    self.xs = nil
    if not xs.detach then error("xpio.luasocket: setfd needs socket:detach() in xpio.so", 2) end
    xs:detach()
  end
  if fd >= 0 then
    if not xpio.adopt then error("xpio.luasocket: setfd needs xpio.adopt in xpio.so", 2) end
    self.xs = assert(xpio.adopt(fd))
  end
end

--- The XPIO socket underneath (nil when closed), for code that mixes the
--- two APIs.
function methods:xpio() return self.xs end

local restrict = {
  master = { "bind", "connect", "listen", "close", "getfd", "setfd", "settimeout", "gettimeout",
             "setoption", "getoption", "getsockname", "getpeername", "dirty", "xpio", "shutdown" },
  client = { "receive", "send", "close", "shutdown", "getfd", "setfd", "settimeout", "gettimeout",
             "setoption", "getoption", "getsockname", "getpeername", "dirty", "xpio" },
  server = { "accept", "close", "getfd", "setfd", "settimeout", "gettimeout", "setoption",
             "getoption", "getsockname", "getpeername", "dirty", "xpio" },
}

for kind, list in pairs(restrict) do
  local index = {}
  for _, method in ipairs(list) do index[method] = methods[method] end
  local class = "tcp{" .. kind .. "}"
  index.class = class
  classes[kind] = {
    __index = index,
    __name = class,
    __tostring = function(self) return class .. ": " .. string.format("%p", self) end,
    __close = function(self) self:close() end,
  }
end

return M
