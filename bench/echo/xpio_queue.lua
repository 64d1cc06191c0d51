-- echo/xpio_queue.lua: the line echo server of echo/xpio.lua on XPIO's task
-- queue itself (try_ calls, when_ calls, tqueue:wait; no coroutines), the
-- way echo/luv.lua is written on callbacks: a connection is one table, its
-- task. Serves until killed; prints its port. For the memory rows, beside
-- the xpio.sched server: the difference between the two is what a
-- coroutine per connection costs.
local xpio = require "xpio"

local q = assert(xpio.tqueue())
local server = assert(xpio.socket("TCP"))
assert(server:bind("127.0.0.1:0"))
assert(server:listen(1024))
print((server:getsockname():match(":(%d+)$")))
io.stdout:flush()

-- A connection's task: { _queue = q, sock = the socket, out = the reply
-- still to write, at = where in it }. Runs until it must wait: then it
-- schedules itself for what it waits on, or closes at the end.
local function serve(conn)
  local c = conn.sock
  while true do
    local out = conn.out
    if out then
      local sent, err = c:try_write(out, conn.at)
      if not sent then
        if err == "retry" then return assert(c:when_write(conn)) end
        return c:close()
      end
      if conn.at + sent > #out then
        conn.out, conn.at = false, false
      else
        conn.at = conn.at + sent
      end
    else
      local line, err = c:try_readline()
      if not line then
        if err == "retry" then return assert(c:when_read(conn)) end
        return c:close()   -- the end of the stream, or a failure
      end
      conn.out, conn.at = line .. "\n", 1
    end
  end
end

local acceptor = { _queue = q }

local function accept()
  while true do
    local c, err = server:try_accept()
    if not c then
      assert(err == "retry", err)
      return assert(server:when_read(acceptor))
    end
    serve({ _queue = q, sock = c, out = false, at = false })
  end
end

accept()
while true do
  local ready = assert(q:wait())
  for i = 1, #ready do
    local task = ready[i]
    if task == acceptor then accept() else serve(task) end
  end
end
