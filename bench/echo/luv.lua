-- echo/luv.lua: the same echo server on luv (it echoes what it reads).
local uv = require "luv"

-- libuv leaves SIGPIPE alone: a client gone mid-write would kill the
-- server. A handler (doing nothing) keeps it alive, as servers on luv do.
local sigpipe = uv.new_signal()
sigpipe:start("sigpipe", function() end)
sigpipe:unref()

local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
assert(server:listen(1024, function()
  local c = uv.new_tcp()
  server:accept(c)
  c:read_start(function(err, data)
    if err or not data then return c:close() end
    c:write(data)
  end)
end))
print(server:getsockname().port)
io.stdout:flush()
uv.run()
