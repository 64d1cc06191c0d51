-- A small line-protocol service and its life: clients send one command per
-- line and get one line back; SIGUSR1 prints statistics (a signal handler
-- loop, in a task); SIGTERM shuts the service down gracefully: it stops
-- accepting, lets the clients it has finish, and stops its worker child.
local xpio = require "xpio"
local sched = require "xpio.sched"

local listener = assert(xpio.socket("TCP"))
assert(listener:setsockopt("SO_REUSEADDR", true))
assert(listener:bind("127.0.0.1:0"))
assert(listener:listen())
local address = listener:getsockname()
local worker = assert(xpio.spawn({ "sleep", "60" }, xpio.env))   -- some helper process of the service
local requests, shutting_down = 0, false

--- One client: each line is a command; QUIT ends the conversation.
local function serve(conn)
  for line in function() return conn:readline() end do
    if line == "QUIT" then break end
    requests = requests + 1
    assert(conn:write(line:upper() .. "\n"))
  end
  conn:close()
end

-- Accept until the shutdown, checking for it ten times a second.
sched.spawn(function()
  while not shutting_down do
    local conn, err = sched.timeout(0.1, listener.accept, listener)
    if conn then sched.spawn(serve, conn) elseif err ~= "timeout" then sched.sleep(0.05) end
  end
  listener:close()
end)

-- Signals, as events in tasks.
sched.spawn(function()
  local usr1 = assert(xpio.signal("USR1"))
  while not shutting_down do
    if sched.timeout(0.1, usr1.wait, usr1) then print(("stats: %d requests served"):format(requests)) end
  end
  usr1:close()
end)
sched.spawn(function()
  local term = assert(xpio.signal("TERM"))
  term:wait()
  term:close()
  print("TERM: shutting down")
  shutting_down = true
  print("worker stopped: " .. table.concat({ worker:stop(1) }, " "))
end)

-- A client of the line protocol, then the signals an operator would send.
sched.spawn(function()
  local c = assert(xpio.socket("TCP"))
  assert(c:connect(address))
  for _, word in ipairs({ "hello", "world" }) do
    assert(c:write(word .. "\n"))
    print("client got " .. assert(c:readline()))
  end
  assert(c:write("QUIT\n"))
  c:close()
  local pid = io.open("/proc/self/stat"):read("n")
  os.execute("kill -USR1 " .. pid)
  sched.sleep(0.3)
  os.execute("kill -TERM " .. pid)
end)

sched.run()
print("service done")
