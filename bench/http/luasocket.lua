-- http/luasocket.lua: the same 12-byte keep-alive server on LuaSocket with
-- select, a coroutine per connection resumed when its socket is readable.
local socket = require "socket"

local SMALL = require("http_responses").SMALL

local server = assert(socket.bind("127.0.0.1", 0, 1024))
server:settimeout(0)
local _, port = server:getsockname()
print(port)
io.stdout:flush()

local readers, handlers = { server }, {}

local function remove(c)
  for i, s in ipairs(readers) do if s == c then table.remove(readers, i) break end end
  handlers[c] = nil
  c:close()
end

--- The next line of `c`, yielding while it is incomplete (LuaSocket hands
--- a partial line back on a timeout: it is given again as the prefix).
local function receive_line(c)
  local part = ""
  while true do
    local line, err, partial = c:receive("*l", part)
    if line then return line end
    if err ~= "timeout" then return nil end
    part = partial
    coroutine.yield()
  end
end

local function handler(c)
  return coroutine.wrap(function()
    while true do
      local request = receive_line(c)
      if not request then return remove(c) end
      local header
      repeat header = receive_line(c) until not header or header == ""
      if not header then return remove(c) end
      c:settimeout(nil)
      c:send(SMALL)
      c:settimeout(0)
    end
  end)
end

while true do
  local ready = socket.select(readers, nil)
  for _, s in ipairs(ready) do
    if s == server then
      local c = server:accept()
      if c then
        c:settimeout(0)
        c:setoption("tcp-nodelay", true)
        readers[#readers + 1] = c
        handlers[c] = handler(c)
      end
    elseif handlers[s] then
      handlers[s]()
    end
  end
end
