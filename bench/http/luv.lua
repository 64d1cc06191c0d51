-- http/luv.lua MODE [FILE]: the same server as http/xpio.lua on luv,
-- written as luv is used: read callbacks splitting a buffer at "\r\n\r\n".
-- GET /file: FILE with fs_sendfile (MODE "sendfile") or fs_read/write ("rw").
local uv = require "luv"

-- libuv leaves SIGPIPE alone: a client gone mid-write would kill the
-- server. A handler (doing nothing) keeps it alive, as servers on luv do.
local sigpipe = uv.new_signal()
sigpipe:start("sigpipe", function() end)
sigpipe:unref()

local mode, path = arg[1] or "sendfile", arg[2]
local responses = require "http_responses"
local SMALL = responses.SMALL
local size, FILE_HEAD = responses.file(path)

local function send_file(c, done)
  local fd = assert(uv.fs_open(path, "r", 0))
  c:write(FILE_HEAD)
  if mode == "sendfile" then
    local sock = c:fileno()
    local offset = 0
    local function step()
      if c:is_closing() then uv.fs_close(fd) return end   -- the client went away mid-file
      uv.fs_sendfile(sock, fd, offset, size - offset, function(err, sent)
        if err and not err:find("EAGAIN") then uv.fs_close(fd) return done(false) end
        offset = offset + (sent or 0)
        if offset >= size then uv.fs_close(fd) return done(true) end
        -- the socket is full: wait until it is writable (a poll handle on it)
        local p = uv.new_poll(sock)
        p:start("w", function() p:stop() p:close() step() end)   -- an error wakes it too: step sees it
      end)
    end
    step()
  else
    local offset = 0
    local function step()
      if c:is_closing() then uv.fs_close(fd) return end
      uv.fs_read(fd, 65536, offset, function(err, data)
        if c:is_closing() then uv.fs_close(fd) return end
        if err or not data or #data == 0 then uv.fs_close(fd) return done(not err) end
        offset = offset + #data
        c:write(data, function(werr) if werr then uv.fs_close(fd) return done(false) end step() end)
      end)
    end
    step()
  end
end

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
assert(server:listen(1024, function()
  local c = uv.new_tcp()
  server:accept(c)
  c:nodelay(true)
  local pending, busy = "", false
  local function process()
    while not busy do
      local at = pending:find("\r\n\r\n", 1, true)
      if not at then return end
      local request = pending:sub(1, at + 3)
      pending = pending:sub(at + 4)
      if path and request:find("^GET /file ") then
        busy = true
        c:read_stop()
        send_file(c, function(ok)
          busy = false
          if not ok then return c:close() end
          c:read_start(function(err, data)
            if err or not data then return c:close() end
            pending = pending .. data
            process()
          end)
          process()
        end)
      else
        c:write(SMALL)
      end
    end
  end
  c:read_start(function(err, data)
    if err or not data then return c:close() end
    pending = pending .. data
    process()
  end)
end))
print(server:getsockname().port)
io.stdout:flush()
uv.run()
