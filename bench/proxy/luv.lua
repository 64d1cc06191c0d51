-- proxy/luv.lua MODE UPSTREAM: the same forwarder on luv, read callbacks
-- writing each chunk on, reading paused while the upstream's queue is long.
local uv = require "luv"

-- libuv leaves SIGPIPE alone: a client gone mid-write would kill the
-- server. A handler (doing nothing) keeps it alive, as servers on luv do.
local sigpipe = uv.new_signal()
sigpipe:start("sigpipe", function() end)
sigpipe:unref()

local upstream = assert(tonumber(arg[2]), "upstream port expected")
local server = uv.new_tcp()
assert(server:bind("127.0.0.1", 0))
assert(server:listen(16, function()
  local from = uv.new_tcp()
  server:accept(from)
  local to = uv.new_tcp()
  to:connect("127.0.0.1", upstream, function(err)
    assert(not err, err)
    local function on_read(rerr, data)
      assert(not rerr, rerr)
      if not data then
        to:shutdown(function() to:close() from:close() server:close() end)
        return
      end
      to:write(data)
      if to:get_write_queue_size() > 1048576 then
        from:read_stop()
        to:write("", function() from:read_start(on_read) end)
      end
    end
    from:read_start(on_read)
  end)
end))
print(server:getsockname().port)
io.stdout:flush()
uv.run()
