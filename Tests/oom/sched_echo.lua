-- OOM scenario: an echo server under xpio.sched (preloaded, with its
-- queue): blocking accept, connect, read and write yield and come back
-- through tqueue:wait; a read cut short by sched.timeout (the scheduler
-- dequeues the task and resumes it with nil, "timeout"); a blocking
-- process:wait, and xpio.run (preloaded too) feeding and reading cat.
-- (Blocking resolve is left to resolve.lua: a lookup a memory error
-- abandons keeps two descriptors, a known bug, see README.md.)
-- A memory error in a task makes sched.run raise it (strict mode);
-- that ends the scenario, the other tasks left waiting (a rerun could wait
-- forever on a peer that died), and lua_close must then close everything
-- they held.
local xpio = require "xpio"
local sched = require "xpio.sched"
sched.onerror(sched.raise) -- strict: a memory error in a task ends the scenario (see above)
local run = require "xpio.run"

local CLIENTS, MESSAGES = 3, 3

return function()
  local server = assert(xpio.socket("TCP"))
  assert(server:bind("127.0.0.1:0"))
  assert(server:listen())
  local address = assert(server:getsockname())

  sched.spawn(function()
    for _ = 1, CLIENTS do
      local conn = assert(server:accept())
      sched.spawn(function()
        for data in function() return conn:read(4096) end do assert(conn:write(data)) end
        conn:close()
      end)
    end
    server:close()
  end)

  for c = 1, CLIENTS do
    sched.spawn(function()
      local s = assert(xpio.socket("TCP"))
      assert(s:connect(address))
      for m = 1, MESSAGES do
        local message = string.rep(string.char(64 + c), 40 + m) -- longer than 40: pushing it allocates
        assert(s:write(message))
        local got = ""
        while #got < #message do got = got .. assert(s:read(4096)) end
        assert(got == message, "echo")
      end
      s:close()
    end)
  end

  sched.spawn(function()
    local a, b = assert(xpio.socketpair())
    local data, err = sched.timeout(0.02, a.read, a, 10)
    assert(data == nil and err == "timeout", "timeout")
    a:close()
    b:close()
  end)

  sched.spawn(function()
    local p = assert(xpio.spawn({ "/bin/true" }))
    local kind, code = p:wait()
    assert(kind == "exit" and code == 0, "wait")
    local input = string.rep("r", 100)
    local status, exit, out = run({ "cat" }, { stdin = input, timeout = 5 })
    assert(status == "exit" and exit == 0 and out == input,
      "xpio.run: " .. tostring(status) .. " " .. tostring(exit) .. " " .. #tostring(out))
  end)

  sched.run()
end
