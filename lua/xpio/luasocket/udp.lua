--- xpio.luasocket.udp: LuaSocket's UDP object (unconnected, connected) on an
--- XPIO socket. Datagrams are read with recvfrom, which keeps an empty
--- datagram as "" (a datagram socket has no end of stream).
local xpio = require "xpio"
local wait = require "xpio.luasocket.wait"
local common = require "xpio.luasocket.common"

local waitfor, readable, writable = wait.wait, wait.readable, wait.writable
local deadline, start_of, err_of = common.deadline, common.start, common.error
local checkstring, expect = common.checkstring, common.expect

local M = {}
local methods = {}
local classes = {}

local DATAGRAMSIZE = 8192 -- LuaSocket's UDP_DATAGRAMSIZE, receive's default

function M.new(family)
  return setmetatable({ family = family, block = -1, total = -1 }, classes.unconnected)
end

local function ensure(self, family)
  if self.xs then return self.xs end
  if self.closed then return nil, "closed" end
  local xs, err = xpio.socket("UDP", family)
  if not xs then return nil, err_of(err) end
  self.xs, self.family = xs, family
  return xs
end

--- socket.udp4() and socket.udp6(): a socket with its descriptor made at
--- once, as LuaSocket's.
function M.open(family)
  local self = M.new(family)
  local xs, err = ensure(self, family)
  if not xs then return nil, err end
  return self
end

local function family_of(self, address)
  return self.family or (address:sub(1, 1) == "[" and "inet6" or "inet")
end

function methods:setsockname(host, port)
  local list, err = common.resolve(tostring(host), port, self.family)
  if not list then return nil, err end
  local xs
  xs, err = ensure(self, family_of(self, list[1]))
  if not xs then return nil, err end
  local ok
  ok, err = xs:bind(list[1])
  if not ok then return nil, err_of(err) end
  return 1
end

function methods:setpeername(host, port)
  if host == "*" then return nil, "xpio.luasocket: a UDP socket cannot be disconnected" end
  local list, err = common.resolve(tostring(host), port, self.family)
  if not list then return nil, err end
  local xs
  xs, err = ensure(self, family_of(self, list[1]))
  if not xs then return nil, err end
  local ok
  ok, err = xs:try_connect(list[1])
  if not ok then return nil, err_of(err) end
  setmetatable(self, classes.connected)
  return 1
end

-- Run one datagram call `try(xs, ...)` to completion or the deadline.
local function run(self, when, try, ...)
  local xs = self.xs
  if not xs then return nil, "closed" end
  local start = start_of(self)
  while true do
    local a, b, c = try(xs, ...)
    if a ~= nil then return a, b, c end
    if b ~= "retry" then return nil, err_of(b) end
    local ok, err = waitfor(xs, when, deadline(self, start))
    if not ok then return nil, err_of(err) end
  end
end

local function try_send(xs, data) return xs:try_write(data) end
local function try_sendto(xs, data, address) return xs:try_sendto(data, address) end
local function try_recv(xs, size) return xs:try_recvfrom(size) end

-- send and sendto answer the count alone, as LuaSocket's do.
local function count_or_error(sent, err)
  if sent == nil then return nil, err end
  return sent
end

function methods:send(data)
  expect(self, classes.connected, "send")
  return count_or_error(run(self, writable, try_send, checkstring(data, 1, "send")))
end

function methods:sendto(data, host, port)
  expect(self, classes.unconnected, "sendto")
  data = checkstring(data, 1, "sendto")
  checkstring(host, 2, "sendto")
  checkstring(port, 3, "sendto")
  local list, err = common.resolve(tostring(host), port, self.family)
  if not list then return nil, err end
  if not self.xs then
    local xs
    xs, err = ensure(self, family_of(self, list[1]))
    if not xs then return nil, err end
  end
  return count_or_error(run(self, writable, try_sendto, data, list[1]))
end

function methods:receive(size)
  local data, err = run(self, readable, try_recv, math.tointeger(size or DATAGRAMSIZE) or DATAGRAMSIZE)
  if data == nil then return nil, err end
  return data
end

function methods:receivefrom(size)
  local data, from = run(self, readable, try_recv, math.tointeger(size or DATAGRAMSIZE) or DATAGRAMSIZE)
  if data == nil then return nil, from end
  local host, port = common.split(from)
  return data, host, port
end

function methods:getsockname()
  if not self.xs then return nil, "Bad file descriptor" end
  local address, err = self.xs:getsockname()
  if not address then return nil, err end
  local host, port, family = common.split(address)
  return host, tostring(port), family
end

function methods:getpeername()
  if not self.xs then return nil, "Bad file descriptor" end
  local address, err = self.xs:getpeername()
  if not address then return nil, err end
  return common.split(address)
end

methods.close = common.close

methods.settimeout = common.settimeout
function methods:gettimeout() return self.block, self.total end

function methods:setoption(option_name, value)
  local option, checked = common.checkoption(option_name, value)
  local xs, err = ensure(self, self.family or "inet")
  if not xs then return nil, err end
  return common.setoption(xs, option, checked)
end

function methods:getoption(option_name)
  return common.getoption(self.xs, option_name)
end

function methods.dirty() return false end
function methods:getfd() return self.xs and self.xs:fileno() or -1 end
function methods:xpio() return self.xs end

--- "inet6" for an IPv6 object, else "inet4", as udp.c names them.
function methods:getfamily()
  return self.family == "inet6" and "inet6" or "inet4"
end

methods.setfd = common.setfd

for _, kind in ipairs({ "unconnected", "connected" }) do
  local class = "udp{" .. kind .. "}"
  local index = { class = class }
  for k, f in pairs(methods) do index[k] = f end
  classes[kind] = {
    __index = index,
    __name = class,
    __tostring = function(self) return class .. ": " .. string.format("%p", self) end,
    __close = function(self) self:close() end,
  }
end

return M
