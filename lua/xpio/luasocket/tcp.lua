--- xpio.luasocket.tcp: LuaSocket's TCP object (master, client, server) on
--- an XPIO socket.
--
-- Inside an xpio.sched task's own coroutine, `receive` and `send` are one
-- XPIO blocking call each (`readline`, `readexactly`, `readall`, `write`),
-- with the deadline as a `sched.timeout`: several tasks sharing one object
-- take turns as XPIO's own calls do (README, "One socket, many tasks"),
-- each call's bytes contiguous and in the order of the calls. Anywhere else
-- a call tries the XPIO `try_` function first and waits (wait.lua) only
-- when it answers "retry", blocking the process as LuaSocket does. Results
-- and error strings are LuaSocket's (tcp.c, buffer.c): 1 for success,
-- `nil, "closed"` / `"timeout"` / `"connection refused"`, and the bytes
-- received so far as third value of a failed `receive`.
local xpio = require "xpio"
local wait = require "xpio.luasocket.wait"
local common = require "xpio.luasocket.common"

local waitfor, readable, writable, task_sched = wait.wait, wait.readable, wait.writable, wait.task_sched
local deadline, start_of, err_of = common.deadline, common.start, common.error
local nocr, checkstring, expect = common.nocr, common.checkstring, common.expect
local gettime = xpio.gettime
local concat, sub = table.concat, string.sub

local M = {}

local methods = {}   -- every method; each class's metatable has them all, as LuaSocket's
local classes = {}   -- "master" | "client" | "server" -> metatable

local MAXLINE = 1 << 40  -- LuaSocket has no line limit; XPIO's readline takes one

local function new(kind, family, xs)
  return setmetatable({ xs = xs, family = family, block = -1, total = -1,
                        received = 0, sent = 0, birthday = gettime() }, classes[kind])
end
M.new = new

--- socket.tcp4() and socket.tcp6(): a master with its descriptor made at
--- once, as LuaSocket's (getfd, getoption and setoption work before bind).
function M.open(family)
  local xs, err = xpio.socket("TCP", family)
  if not xs then return nil, err_of(err) end
  return new("master", family, xs)
end

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

-- The bytes an XPIO socket holds from a receive that failed or timed out
-- (what its buffered reads kept), taken: LuaSocket returns them as the
-- third value, consumed. Only those: a byte still in the kernel arrived
-- after the call gave up, and belongs to the next one.
local function held(xs)
  local parts = {}
  while true do
    local n = xs.buffered and xs:buffered() or 0
    if n <= 0 then return concat(parts) end
    local data = xs:try_read(math.min(n, 65536))
    if not data then return concat(parts) end
    parts[#parts + 1] = data
  end
end

-- Runs XPIO's blocking `method` of `xs` in the task of `sched` until the
-- call's deadline; a deadline already past tries once (`settimeout(0)`).
local function blocking(self, sched, xs, method, a, b, c)
  local d = deadline(self, start_of(self))
  if not d then return xs[method](xs, a, b, c) end
  local left = d - gettime()
  if left <= 0 then
    local x, y, z = xs["try_" .. method](xs, a, b, c)
    if x == nil and y == "retry" then y = "timeout" end
    return x, y, z
  end
  return sched.timeout(left, xs[method], xs, a, b, c)
end

-- A failed receive's answer: LuaSocket's error name and the prefix with
-- the bytes received so far (the end of the stream's partial, or what the
-- socket kept).
local function failure(xs, err, partial, prefix, line)
  if err == "retry" then err = "timeout" end
  partial = partial or held(xs)
  return nil, err_of(err), prefix .. (line and nocr(partial) or partial)
end

local function receive_line(self, xs, prefix)
  local sched = task_sched()
  if sched then
    local line, err, partial = blocking(self, sched, xs, "readline", false, MAXLINE)
    if line then return prefix .. nocr(line) end
    if err == nil then return nil, "closed", prefix end
    return failure(xs, err, partial, prefix, true)
  end
  local start = start_of(self)
  while true do
    local line, err, partial = xs:try_readline(false, MAXLINE)
    if line then return prefix .. nocr(line) end
    if line == nil and err == nil then return nil, "closed", prefix end
    if err ~= "retry" then return failure(xs, err, partial, prefix, true) end
    local ok, werr = waitfor(xs, readable, deadline(self, start))
    if not ok then return failure(xs, werr, nil, prefix, true) end
  end
end

local function receive_size(self, xs, size, prefix)
  if size <= 0 then return prefix end
  local sched = task_sched()
  if sched then
    local data, err, partial = blocking(self, sched, xs, "readexactly", size)
    if data then return prefix .. data end
    if err == nil then return nil, "closed", prefix end
    return failure(xs, err, partial, prefix)
  end
  local start = start_of(self)
  while true do
    local data, err, partial = xs:try_readexactly(size)
    if data then return prefix .. data end
    if data == nil and err == nil then return nil, "closed", prefix end
    if err ~= "retry" then return failure(xs, err, partial, prefix) end
    local ok, werr = waitfor(xs, readable, deadline(self, start))
    if not ok then return failure(xs, werr, nil, prefix) end
  end
end

-- "*a": everything up to the end of the stream; LuaSocket answers "closed"
-- only when the stream ended before a single byte (buffer.c recvall).
local function receive_all(self, xs, prefix)
  local sched = task_sched()
  if sched then
    local data, err = blocking(self, sched, xs, "readall")
    if data == "" then return nil, "closed", prefix end
    if data then return prefix .. data end
    return failure(xs, err, nil, prefix)
  end
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
      if not ok then return nil, err_of(werr), concat(parts) .. held(xs) end
    elseif err == nil then
      if got == 0 then return nil, "closed", prefix end
      return concat(parts)
    else
      return nil, err_of(err), concat(parts) .. held(xs)
    end
  end
end

-- Counts the bytes a receive gave (getstats), past its prefix.
local function count_received(self, prefix, data, err, partial)
  self.received = self.received + #(data or partial or prefix) - #prefix
  return data, err, partial
end

function methods:receive(pattern, prefix)
  expect(self, classes.client, "receive")
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
  if size then return count_received(self, prefix, receive_size(self, xs, math.tointeger(size // 1) - #prefix, prefix)) end
  if p == "l" then return count_received(self, prefix, receive_line(self, xs, prefix)) end
  return count_received(self, prefix, receive_all(self, xs, prefix))
end

-- A position as buffer.c reads it: a number, truncated toward zero.
local function position(v, default, n)
  if v == nil then return default end
  local x = tonumber(v)
  if not x then error(("bad argument #%d to 'send' (number expected, got %s)"):format(n, type(v)), 3) end
  if x ~= x then return default end
  x = x >= 0 and math.floor(x) or math.ceil(x)
  return math.tointeger(x) or (x > 0 and math.maxinteger or math.mininteger)
end

-- Sends `data` bytes i to j (clamped) with XPIO's try_write, waiting when
-- it answers "retry": the path outside a task.
local function send_piece(self, xs, data, i, j)
  local sent, start = 0, nil
  local total = j - i + 1
  while true do
    local n, err = xs:try_write(data, i + sent, j)
    if n then
      sent = sent + n
      if sent >= total then return sent end
    elseif err == "retry" then
      start = start or start_of(self)
      local ok, werr = waitfor(xs, writable, deadline(self, start))
      if not ok then return nil, werr, sent end
    else
      return nil, err, sent
    end
  end
end

--- send(data, i, j): LuaSocket's result is the index of the last byte sent
--- (i - 1 + count), also as third value when it fails.
function methods:send(data, i, j)
  expect(self, classes.client, "send")
  data = checkstring(data, 1, "send")
  local len = #data
  i, j = position(i, 1, 2), position(j, -1, 3)
  if i < 0 then i = len + i + 1 end
  if j < 0 then j = len + j + 1 end
  if i < 1 then i = 1 end
  if j > len then j = len end
  local xs = self.xs
  if not xs then return nil, "closed", i - 1 end
  if i > j then return i - 1 end
  local sched = task_sched()
  local n, err, count
  if sched then
    n, err, count = blocking(self, sched, xs, "write", data, i, j)
  else
    n, err, count = send_piece(self, xs, data, i, j)
  end
  self.sent = self.sent + (n or count or 0)
  if n then return i - 1 + n end
  return nil, err_of(err), i - 1 + (count or 0)
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

-- tcp.c sets the class to client whether the connect succeeded or not
-- ("because of non-blocking connects": a `settimeout(0)` connect answers
-- "timeout" and goes on, and the caller then selects and sends).
function methods:connect(host, port)
  checkstring(host, 1, "connect")
  checkstring(port, 2, "connect")
  local start = start_of(self)
  local list, err = common.resolve(tostring(host), port, self.family, deadline(self, start))
  setmetatable(self, classes.client)
  if not list then return nil, err end
  for _, address in ipairs(list) do
    local family = self.family or (address:sub(1, 1) == "[" and "inet6" or "inet")
    local fresh = self.xs == nil
    local xs
    xs, err = ensure(self, family)
    if not xs then return nil, err end
    local ok
    ok, err = connect_one(self, xs, address, start)
    if ok then return 1 end
    -- Only a socket made for this address is dropped for the next one.
    if err == "timeout" or not fresh then return nil, err end
    xs:close()
    self.xs = nil
  end
  return nil, err
end

function methods:bind(host, port)
  expect(self, classes.master, "bind")
  checkstring(host, 1, "bind")
  checkstring(port, 2, "bind")
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
  expect(self, classes.master, "listen")
  backlog = common.optnumber(backlog, 32, 1, "listen")
  local xs, err = ensure(self, self.family or "inet")
  if not xs then return nil, err end
  local ok
  ok, err = xs:listen(math.max(0, math.min(math.tointeger(backlog // 1) or 32, 65535)))
  if not ok then return nil, err_of(err) end
  setmetatable(self, classes.server)
  return 1
end

function methods:accept()
  expect(self, classes.server, "accept")
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

function methods:setoption(option_name, value)
  local option, checked = common.checkoption(option_name, value)
  local xs = self.xs
  if not xs then
    -- `socket.tcp()` has no descriptor before bind or connect: keep the
    -- option for then (LuaSocket answers "setsockopt failed" here, and
    -- the option is lost).
    if checked == nil then return nil, "setsockopt failed" end
    self.pending = self.pending or {}
    self.pending[#self.pending + 1] = { option, checked }
    return 1
  end
  return common.setoption(xs, option, checked)
end

function methods:getoption(option_name)
  return common.getoption(self.xs, option_name)
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

methods.setfd = common.setfd

--- The XPIO socket underneath (nil when closed), for code that mixes the
--- two APIs.
function methods:xpio() return self.xs end

--- getstats(): bytes received, bytes sent and the object's age in
--- seconds (buffer.c); setstats(received, sent, age) sets them (LuaSocket's
--- ftp.put reads them).
function methods:getstats()
  expect(self, classes.client, "getstats")
  return self.received, self.sent, gettime() - self.birthday
end

function methods:setstats(received, sent, age)
  expect(self, classes.client, "setstats")
  self.received = common.optnumber(received, self.received, 1, "setstats")
  self.sent = common.optnumber(sent, self.sent, 2, "setstats")
  if tonumber(age) then self.birthday = gettime() - tonumber(age) end
  return 1
end

--- "inet6" for an IPv6 object, else "inet4", as tcp.c names them.
function methods:getfamily()
  return self.family == "inet6" and "inet6" or "inet4"
end

methods.setpeername = methods.connect
methods.setsockname = methods.bind

for _, kind in ipairs({ "master", "client", "server" }) do
  local class = "tcp{" .. kind .. "}"
  local index = { class = class }
  for key, method in pairs(methods) do index[key] = method end
  classes[kind] = {
    __index = index,
    __name = class,
    __tostring = function(self) return class .. ": " .. string.format("%p", self) end,
    __close = function(self) self:close() end,
  }
end

return M
