-- http/xpio.lua MODE [FILE]: a minimal HTTP/1.1 keep-alive server written
-- idiomatically for XPIO (xpio.sched, a readline per header line). Prints
-- its port, then serves until killed. Every request gets the 12-byte body,
-- except GET /file: FILE, sent with sendfile (MODE "sendfile") or read
-- and written through Lua strings (MODE "rw").
local xpio = require "xpio"
local sched = require "xpio.sched"

local mode, path = arg[1] or "sendfile", arg[2]
local responses = require "http_responses"
local SMALL = responses.SMALL
local size, FILE_HEAD = responses.file(path)

local function send_file(c)
  local file <close> = assert(xpio.open(path))
  if mode == "sendfile" then
    assert(c:write(FILE_HEAD))
    return c:sendfile(file, 0, size)
  end
  local ok = c:write(FILE_HEAD)
  while ok do
    local data = file:read(65536)
    if not data then return true end
    ok = c:write(data)
  end
  return ok
end

local function serve(c)
  assert(c:setsockopt("TCP_NODELAY", true))
  while true do
    local request = c:readline()
    if not request then break end
    repeat
      local header = c:readline()
    until not header or header == ""
    local ok
    if path and request:find("^GET /file ") then ok = send_file(c) else ok = c:write(SMALL) end
    if not ok then break end
  end
  c:close()
end

local server = assert(xpio.socket("TCP"))
assert(server:setsockopt("SO_REUSEADDR", true))
assert(server:bind("127.0.0.1:0"))
assert(server:listen(1024))
print((server:getsockname():match(":(%d+)$")))
io.stdout:flush()
sched.spawn(function()
  while true do
    local c = server:accept()
    if c then sched.spawn(serve, c) end
  end
end)
sched.run()
