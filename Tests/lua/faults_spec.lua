-- Fault tests (issue 8): what XPIO does when the system says no, when peers
-- and children misbehave, when signals interrupt a wait, and when user code
-- fails or walks away between scheduling and waiting.
--
-- Every expectation is from the documentation: Spec/*.spec (docs/API.md).
local xpio = require "xpio"
local helper = require "helper"

local fresh_sched = helper.fresh_sched

--- Runs `...` (functions) as tasks of `sched` until they are all done, for
--- at most `limit` seconds. Raises the first task error, or a timeout.
local function run(sched, limit, ...)
  return helper.run_tasks(sched, limit, { ... })
end

local tcp_pair = helper.tcp_pair

--- Runs a Lua script in a child interpreter under `sh -c 'prefix; lua5.4 file'`
--- and returns its output (stdout and stderr), and how it ended.
local run_child = helper.run_lua_script

--- Parses "name|v1|v2" lines into { name = { v1, v2 } }.
local function parse_lines(output)
  local result = {}
  for line in output:gmatch("[^\n]+") do
    local fields = {}
    for field in (line .. "|"):gmatch("([^|]*)|") do fields[#fields + 1] = field end
    local name = table.remove(fields, 1)
    result[name] = fields
  end
  return result
end

-- The child scripts print with this.
local OUT = [[
local function out(name, ...)
  local t = table.pack(...)
  local parts = { name }
  for i = 1, t.n do
    local v = t[i]
    parts[#parts + 1] = type(v) == "userdata" and tostring(v):match("^xpio%.(%a+)") or tostring(v)
  end
  print(table.concat(parts, "|"))
  io.stdout:flush()
end
]]

--- `got` holds exactly the tasks of `expected` (the same tables), each once.
local function assert_tasks(expected, got)
  assert.is_table(got)
  assert.equal(#expected, #got, "how many tasks were returned")
  for i, t in ipairs(expected) do
    local n = 0
    for _, g in ipairs(got) do if rawequal(g, t) then n = n + 1 end end
    assert.equal(1, n, "expected task #" .. i .. " returned once")
  end
end

local contains = helper.contains

describe("faults", function()

  describe("descriptor exhaustion (ulimit -n 64, in a child interpreter)", function()
    it("socket, accept, pipe, socketpair, fdopen and spawn return nil, \"Too many open files\"; "
       .. "all work again once descriptors are freed", function()
      local output = run_child(OUT .. [[
local xpio = require "xpio"
local q = assert(xpio.tqueue())
local l = assert(xpio.socket("TCP"))
assert(l:bind("127.0.0.1:0"))
assert(l:listen())
local addr = l:getsockname()
local c = assert(xpio.socket("TCP"))
local ok, err = c:try_connect(addr)
for _ = 1, 500 do
  if ok or err ~= "retry" then break end
  q:wait(0.01)
  ok, err = c:try_connect(addr)
end
out("connected", ok, err)
local r, w = assert(xpio.pipe())
local hold = {}
while true do
  local s, e = xpio.socket("UDP")
  if not s then out("exhausted", #hold, e) break end
  hold[#hold + 1] = s
end
out("socket", xpio.socket("TCP"))
out("accept", l:try_accept())
out("pipe", xpio.pipe())
out("socketpair", xpio.socketpair())
out("fdopen", xpio.fdopen(w:fileno()))
out("spawn_files", xpio.spawn({ "true" }, {}, { [1] = w }))
out("granted_after_failure", w)
local p, perr = xpio.spawn({ "true" }, {})
out("spawn_nofiles", p, perr)
if p then
  local t0 = os.time()
  local co = coroutine.wrap(function() return p:wait() end)
  local task = { _queue = q }
  xpio.setCurrentTask(task)
  local how, code = co()
  while how == nil and os.time() - t0 < 10 do
    q:wait(1)
    how, code = co()
  end
  out("spawn_nofiles_wait", how, code)
end
for _ = 1, 12 do table.remove(hold):close() end
out("socket_again", xpio.socket("TCP"))
out("accept_again", l:try_accept())
out("pipe_again", xpio.pipe())
out("socketpair_again", xpio.socketpair())
out("fdopen_again", xpio.fdopen(w:fileno()))
out("tqueue_again", xpio.tqueue())
local p2 = xpio.spawn({ "sh", "-c", "echo hello" }, xpio.env, { [1] = w })
out("spawn_again", p2, w)
local data = ""
for _ = 1, 500 do
  local chunk, e = r:try_read(100)
  if chunk then data = data .. chunk elseif e ~= "retry" then break end
  q:wait(0.01)
end
out("child_output", (data:gsub("\n", "")))
if p2 then
  for _ = 1, 500 do
    local how, code = p2:try_wait()
    if how then out("spawn_again_wait", how, code) break end
    q:wait(0.01)
  end
end
out("done", "yes")
]], "ulimit -n 64")
      local r = parse_lines(output)
      assert.same({ "done", "yes" }, { "done", r.done and r.done[1] }, "the child did not finish:\n" .. output)
      assert.same({ "true", "nil" }, r.connected, output)
      assert.same("Too many open files", r.exhausted[2], output)
      assert.same({ "nil", "Too many open files" }, r.socket, output)
      assert.same({ "nil", "Too many open files" }, r.accept, output)
      assert.same({ "nil", "Too many open files" }, r.pipe, output)
      assert.same({ "nil", "Too many open files" }, r.socketpair, output)
      assert.same({ "nil", "Too many open files" }, r.fdopen, output)
      assert.same({ "nil", "Too many open files" }, r.spawn_files, output)
      -- a spawn that failed did not take the socket it was to grant
      assert.same({ "socket" }, r.granted_after_failure, output)
      -- spawn with no file to grant still needs a descriptor, the child's
      -- pidfd: it fails before starting a child it could not wait for
      assert.same({ "nil", "Too many open files" }, r.spawn_nofiles, output)
      assert.is_nil(r.spawn_nofiles_wait, output)
      -- everything works again
      assert.same({ "socket" }, r.socket_again, output)
      assert.same({ "socket" }, r.accept_again, output)   -- the connection that waited in the backlog
      assert.same({ "socket", "socket" }, r.pipe_again, output)
      assert.same({ "socket", "socket" }, r.socketpair_again, output)
      assert.same({ "socket" }, r.fdopen_again, output)
      assert.same({ "tqueue" }, r.tqueue_again, output)
      assert.same({ "process", "socket" }, r.spawn_again, output)
      assert.same({ "hello" }, r.child_output, output)
      assert.same({ "exit", "0" }, r.spawn_again_wait, output)
    end)

    it("objects dropped without close do not exhaust descriptors: a full collection frees them", function()
      local output = run_child(OUT .. [[
local xpio = require "xpio"
local l = assert(xpio.socket("TCP"))
assert(l:bind("127.0.0.1:0"))
assert(l:listen(512))
local addr = l:getsockname()
local counts = {}
local function churn(name, make)
  for i = 1, 2000 do
    if not make() then counts[name] = i break end
  end
  counts[name] = counts[name] or "all"
end
churn("socket", function() return xpio.socket("TCP") end)
churn("pipe", function() return xpio.pipe() end)
churn("socketpair", function() return xpio.socketpair() end)
churn("tqueue", function() return xpio.tqueue() end)
churn("open", function() return xpio.open("/dev/null") end)
churn("accept", function()
  local c = xpio.socket("TCP")
  if not c then return nil end
  c:try_connect(addr)
  return l:try_accept() or true   -- a connection not accepted yet is no failure
end)
for _, name in ipairs({ "socket", "pipe", "socketpair", "tqueue", "open", "accept" }) do out(name, counts[name]) end
out("done", "yes")
]], "ulimit -n 64")
      local r = parse_lines(output)
      assert.same({ "yes" }, r.done, output)
      for _, name in ipairs({ "socket", "pipe", "socketpair", "tqueue", "open", "accept" }) do
        assert.same({ "all" }, r[name], name .. ":\n" .. output)
      end
    end)

    it("tqueue() returns nil, \"Too many open files\" (epoll) or a queue (poll backend), and the interpreter lives", function()
      local output, ok, how, code = run_child(OUT .. [[
local xpio = require "xpio"
local hold = {}
while true do
  local s, e = xpio.socket("UDP")
  if not s then out("exhausted", #hold, e) break end
  hold[#hold + 1] = s
end
out("tqueue", xpio.tqueue())
table.remove(hold):close()
out("tqueue_again", xpio.tqueue())
out("done", "yes")
]], "ulimit -n 64")
      assert.is_true(ok, string.format("the child died (%s %s):\n%s", tostring(how), tostring(code), output))
      local r = parse_lines(output)
      assert.same("Too many open files", r.exhausted and r.exhausted[2], output)
      if helper.poll_backend() then
        assert.same({ "tqueue" }, r.tqueue, output)           -- no descriptor needed
      else
        assert.same({ "nil", "Too many open files" }, r.tqueue, output)
      end
      assert.same({ "tqueue" }, r.tqueue_again, output)
    end)
  end)

  describe("peer reset", function()
    it("closing a socket with unread data wakes the peer's blocked reader with \"Connection reset by peer\"", function()
      local sched = fresh_sched()
      local client, server = tcp_pair()
      assert.equal(20, client:try_write("unread by the server"))
      local got = {}
      run(sched, 5, function()
        got.read = table.pack(client:read(100))   -- blocks: the server sends nothing
        got.read_at = sched.now()
      end, function()
        sched.sleep(0.1)
        got.closed_at = sched.now()
        assert.is_true(server:close())           -- unread data: the kernel sends RST
      end)
      assert.same({ n = 2, nil, "Connection reset by peer" }, got.read)
      assert.is_true(got.read_at >= got.closed_at)
      -- a writer then gets "Broken pipe" (or the reset), and lives
      local n, err = client:try_write("after the reset")
      assert.is_nil(n)
      assert.is_true(err == "Broken pipe" or err == "Connection reset by peer", err)
      assert.is_true(client:close())
    end)

    it("the reset wakes a task waiting through a tqueue, and its try_read reports it", function()
      local client, server = tcp_pair()
      local q = xpio.tqueue()
      assert.equal(6, server:try_write("unread"))   -- the client never reads it
      local a, b = { _queue = q }, { _queue = q }
      assert.is_true(server:when_read(a))
      assert.is_true(server:when_read(b))
      assert.same({}, q:wait(0.05))
      assert.is_true(client:close())
      assert_tasks({ a, b }, q:wait(2))
      -- the unread data is dropped with the reset
      local data, err = server:try_read(100)
      assert.is_nil(data)
      assert.equal("Connection reset by peer", err)
      assert.same({}, q:wait(0))
      assert.is_true(q:isEmpty())
      server:close()
      q:close()
    end)

    it("a writer blocked on a full socket wakes with \"Connection reset by peer\" or \"Broken pipe\" when the peer resets", function()
      local sched = fresh_sched()
      local client, server = tcp_pair()
      assert.equal(6, client:try_write("unread"))
      local chunk = string.rep("w", 65536)
      local got = { written = 0 }
      run(sched, 10, function()
        while true do
          local n, err = client:write(chunk)
          if not n then
            got.err = err
            got.failed_at = sched.now()
            return
          end
          got.written = got.written + n
          got.last_write_at = sched.now()
        end
      end, function()
        sched.sleep(0.3)                        -- long enough to fill every buffer
        got.closed_at = sched.now()
        assert.is_true(server:close())
      end)
      assert.is_true(got.written > 0)
      assert.is_true(got.last_write_at < got.closed_at, "the writer never blocked")
      assert.is_true(got.err == "Connection reset by peer" or got.err == "Broken pipe", got.err)
      client:close()
    end)
  end)

  describe("a signal handler installed by someone else interrupting tqueue:wait", function()
    -- Another library's handler: lua-posix's posix.signal where it exists
    -- for this Lua (Debian 12 ships it for 5.1-5.3 only), else luv's signal
    -- handle, which installs a sigaction handler of its own.
    local installers = {
      ["posix.signal"] = function(on_signal)
        local psignal = require "posix.signal"
        local previous = psignal.signal(psignal.SIGUSR1, on_signal)
        return function() psignal.signal(psignal.SIGUSR1, previous or psignal.SIG_DFL) end
      end,
      luv = function(on_signal)
        local uv = helper.luv()
        local handle = uv.new_signal()
        handle:start("sigusr1", on_signal)
        return function()
          handle:stop()
          handle:close()
          uv.run("nowait")
        end
      end,
    }
    local library = pcall(require, "posix.signal") and "posix.signal" or "luv"

    it(library .. "'s SIGUSR1 handler: the wait lasts about the full timeout; no task lost or returned twice", function()
      local uninstall = installers[library](function() end)
      local q = xpio.tqueue()
      local a, b = assert(xpio.socketpair())
      local task = { _queue = q }
      assert.is_true(a:when_read(task))
      local t0 = xpio.gettime()
      assert.is_true(os.execute(string.format("(sleep 0.1; kill -USR1 %d) &", helper.pid())))
      local ready = q:wait(0.3)
      local elapsed = xpio.gettime() - t0
      uninstall()
      assert.same({}, ready)
      -- the whole timeout, and not the signal's 0.1 s (the upper bound only
      -- catches a wait that never ends: a loaded machine can be slow)
      assert.is_true(elapsed >= 0.28 and elapsed < 5, "waited " .. elapsed .. " s")
      assert.is_function(task._dequeue)     -- still scheduled
      assert.equal(1, b:try_write("x"))
      assert_tasks({ task }, q:wait(1))
      assert.same({}, q:wait(0))
      assert.is_true(q:isEmpty())
      a:close()
      b:close()
      q:close()
    end)

    it("the interpreter's own SIGINT handler (lua.c, no SA_RESTART): the wait lasts the full timeout; "
       .. "no task lost or returned twice", function()
      -- lua.c installs a SIGINT handler while a script runs; it makes the
      -- next Lua instruction raise "interrupted!". The wait must resume after
      -- the EINTR and last its full timeout before that happens.
      for _, backend in ipairs({ "epoll", "poll" }) do
        local output, ok = run_child(OUT .. [[
local xpio = require "xpio"
local f = io.open("/proc/self/stat")
local pid = f:read("n")
f:close()
local q = xpio.tqueue()
local a, b = assert(xpio.socketpair())
local task = { _queue = q }
assert(a:when_read(task))
os.execute(string.format("(sleep 0.1; kill -INT %d) &", pid))
local t0 = xpio.gettime()
local caught, message = pcall(q.wait, q, 0.3)
local elapsed = xpio.gettime() - t0
out("interrupted", caught, message)
out("elapsed", string.format("%.3f", elapsed))
out("still_scheduled", type(task._dequeue), q:isEmpty())
assert(b:try_write("x") == 1)
local ready = q:wait(1)
out("ready", #ready, ready[1] == task, task._dequeue)
out("again", #q:wait(0), q:isEmpty())
]], "XPIO_BACKEND=" .. backend .. "; export XPIO_BACKEND")
        assert.is_true(ok, output)
        local r = parse_lines(output)
        assert.same({ "false", "interrupted!" }, r.interrupted, output)
        local elapsed = tonumber(r.elapsed[1])
        assert.is_true(elapsed >= 0.28 and elapsed < 5, backend .. ": waited " .. tostring(elapsed) .. " s")
        assert.same({ "function", "false" }, r.still_scheduled, output)
        assert.same({ "1", "true", "nil" }, r.ready, output)
        assert.same({ "0", "true" }, r.again, output)
      end
    end)
  end)

  describe("children", function()
    it("without pidfds (SIGCHLD self-pipe), one child's check does not swallow another child's exit", function()
      -- b's task waits on the shared pipe; b exits and its SIGCHLD writes a
      -- byte; a's try_wait then empties the pipe before it checks a. The
      -- byte was b's news: b's task must still be returned at once.
      local output, ok = run_child(OUT .. [[
local xpio = require "xpio"
local q = xpio.tqueue()
local a = assert(xpio.spawn({ "sleep", "5" }, xpio.env))
local b = assert(xpio.spawn({ "true" }, xpio.env))
local task = { _queue = q }
assert(b:when_wait(task))
local until_time = xpio.gettime() + 0.3      -- b exits meanwhile (no other child is started)
while xpio.gettime() < until_time do end
out("a_running", a:try_wait())
local t0 = xpio.gettime()
local ready = q:wait(2)
out("ready", #ready, ready[1] == task, string.format("%.2f", xpio.gettime() - t0))
out("b", b:try_wait())
assert(a:kill())
local q2 = xpio.tqueue()
while not a:try_wait() do a:when_wait({ _queue = q2 }) q2:wait(1) end
out("a_done", a:try_wait())
]], "XPIO_NO_PIDFD=1; export XPIO_NO_PIDFD")
      assert.is_true(ok, output)
      local r = parse_lines(output)
      assert.same({ "nil", "retry" }, r.a_running, output)
      assert.same("1", r.ready[1], output)
      assert.same("true", r.ready[2], output)
      assert.is_true(tonumber(r.ready[3]) < 1, "b's task came after " .. r.ready[3] .. " s")
      assert.same({ "exit", "0" }, r.b, output)
      assert.same({ "signal", "9" }, r.a_done, output)
    end)

    it("killed by SIGKILL, SIGTERM and SIGSEGV report \"signal\", n", function()
      local sched = fresh_sched()
      local killed = assert(xpio.spawn({ "sleep", "30" }, xpio.env))
      local termed = assert(xpio.spawn({ "sleep", "30" }, xpio.env))
      local segv = assert(xpio.spawn({ "sh", "-c", "kill -SEGV $$" }, xpio.env))
      local got = {}
      run(sched, 10, function()
        assert.is_true(killed:kill())
        got.kill = table.pack(killed:wait())
      end, function()
        assert.is_true(termed:kill("TERM"))
        got.term = table.pack(termed:wait())
      end, function()
        got.segv = table.pack(segv:wait())
      end)
      assert.same({ n = 2, "signal", 9 }, got.kill)
      assert.same({ n = 2, "signal", 15 }, got.term)
      assert.same({ n = 2, "signal", 11 }, got.segv)
      -- the status stays; a kill after the exit says so
      assert.same({ "signal", 9 }, { killed:try_wait() })
      local ok, err = killed:kill()
      assert.is_nil(ok)
      assert.equal("No such process", err)
    end)

    it("a child that closes its stdout early: the reader gets end of stream while the child still runs", function()
      local sched = fresh_sched()
      local r, w = assert(xpio.pipe())
      local p = assert(xpio.spawn({ "sh", "-c", "echo early; exec >&-; sleep 0.3; exit 3" }, xpio.env, { [1] = w, [2] = 2 }))
      assert.equal("xpio.socket: closed", tostring(w))   -- granted: closed in the parent
      local got = {}
      run(sched, 10, function()
        local data = ""
        while true do
          local chunk = table.pack(r:read(100))
          if chunk[1] == nil then
            got.last = chunk
            break
          end
          data = data .. chunk[1]
        end
        got.data = data
        got.running_at_eof = table.pack(p:try_wait())
        got.status = table.pack(p:wait())
      end)
      assert.equal("early\n", got.data)
      assert.same({ n = 1 }, got.last)                          -- a single nil
      assert.same({ n = 2, nil, "retry" }, got.running_at_eof)
      assert.same({ n = 2, "exit", 3 }, got.status)
      r:close()
    end)

    it("a child that closes its stdin: the parent's write gets \"Broken pipe\"", function()
      local sched = fresh_sched()
      local r, w = assert(xpio.pipe())
      local p = assert(xpio.spawn({ "sh", "-c", "exec <&-; sleep 0.2; exit 0" }, xpio.env, { [0] = r }))
      local got = {}
      run(sched, 10, function()
        sched.sleep(0.1)
        got.write = table.pack(w:write("nobody reads this"))
        got.status = table.pack(p:wait())
      end)
      assert.same({ n = 2, nil, "Broken pipe" }, got.write)
      assert.same({ n = 2, "exit", 0 }, got.status)
      w:close()
    end)

    it("a child that never reads its stdin: try_write says \"retry\" when the pipe is full; after kill, \"Broken pipe\"", function()
      local sched = fresh_sched()
      local r, w = assert(xpio.pipe())
      local p = assert(xpio.spawn({ "sleep", "30" }, xpio.env, { [0] = r }))
      local chunk = string.rep("z", 65536)
      local total, n, err = 0, nil, nil
      for _ = 1, 1000 do
        n, err = w:try_write(chunk)
        if not n then break end
        total = total + n
      end
      assert.is_nil(n)
      assert.equal("retry", err)
      assert.is_true(total >= 4096, "wrote " .. total)
      local got = {}
      run(sched, 10, function()
        -- a blocked writer wakes when the reader goes away
        local wn, werr = w:write(chunk)
        got.write = table.pack(wn, werr)
      end, function()
        sched.sleep(0.1)
        assert.is_true(p:kill())
        got.status = table.pack(p:wait())
      end)
      assert.same({ n = 2, "signal", 9 }, got.status)
      assert.same({ n = 2, nil, "Broken pipe" }, got.write)
      assert.same({ nil, "Broken pipe" }, { w:try_write("x") })
      w:close()
    end)
  end)

  describe("sockets that go away while tasks wait on them", function()
    -- Opens sockets until one gets descriptor `fd`; returns it with its peer.
    local function socket_numbered(fd)
      local spare = {}
      for _ = 1, 200 do
        local a, b = assert(xpio.socketpair())
        if a:fileno() == fd or b:fileno() == fd then
          for _, s in ipairs(spare) do s:close() end
          if a:fileno() == fd then return a, b end
          return b, a
        end
        spare[#spare + 1] = a
        spare[#spare + 1] = b
      end
      for _, s in ipairs(spare) do s:close() end
      error("descriptor " .. fd .. " was not handed out again")
    end

    it("closing a socket wakes every task waiting on it, once; their next call gets nil, message; a reused number wakes nobody", function()
      local q = xpio.tqueue()
      local a, b = assert(xpio.socketpair())
      local fd = a:fileno()
      local t1, t2, t3 = { _queue = q }, { _queue = q }, { _queue = q }
      -- fill a's send buffer, so that a writer waits too
      helper.fill(a)
      assert.is_true(a:when_read(t1))
      assert.is_true(a:when_read(t2))
      assert.is_true(a:when_write(t3))
      assert.same({}, q:wait(0.05))
      assert.is_true(a:close())
      local ready = q:wait(1)
      assert_tasks({ t1, t2, t3 }, ready)
      for _, t in ipairs(ready) do assert.is_nil(t._dequeue) end
      assert.same({ nil, "xpio: socket is closed" }, { a:try_read(10) })
      -- the same number, reused by a new socket
      local c, d = socket_numbered(fd)
      assert.equal(1, d:try_write("x"))
      assert.same({}, q:wait(0.1))             -- the old waiters were returned already
      local t4 = { _queue = q }
      assert.is_true(c:when_read(t4))
      assert_tasks({ t4 }, q:wait(1))
      assert.is_true(q:isEmpty())
      b:close()
      c:close()
      d:close()
      q:close()
    end)

    it("a closed socket's waiters are returned once even when its number is reused before the wait", function()
      local q = xpio.tqueue()
      local a, b = assert(xpio.socketpair())
      local fd = a:fileno()
      local t1 = { _queue = q }
      assert.is_true(a:when_read(t1))
      assert.is_true(a:close())
      local c, d = socket_numbered(fd)
      local t2 = { _queue = q }
      assert.is_true(c:when_read(t2))
      assert_tasks({ t1 }, q:wait(0.1))         -- the closed socket's waiter, not woken by c
      assert.is_function(t2._dequeue)
      assert.equal(1, d:try_write("x"))
      assert_tasks({ t2 }, q:wait(1))
      assert.same({}, q:wait(0.05))
      assert.is_true(q:isEmpty())
      b:close()
      c:close()
      d:close()
      q:close()
    end)

    it("a socket waited on is not collected; once its task is returned and it is dropped, its number is closed", function()
      local q = xpio.tqueue()
      local a, b = assert(xpio.socketpair())
      local fd = a:fileno()
      local t = { _queue = q }
      assert.is_true(a:when_read(t))
      a = nil  -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      assert.is_true(contains(helper.fd_list(), fd), "the queue let a waited-on socket be collected")
      assert.equal(1, b:try_write("x"))
      assert_tasks({ t }, q:wait(1))
      collectgarbage()
      collectgarbage()
      assert.is_false(contains(helper.fd_list(), fd), "a dropped socket was not closed by collection")
      -- the number, reused, wakes nobody
      local c, d = socket_numbered(fd)
      assert.equal(1, d:try_write("y"))
      assert.same({}, q:wait(0.1))
      b:close()
      c:close()
      d:close()
      q:close()
    end)

    it("the peer collected while a task waits: the waiter wakes and reads end of stream", function()
      local q = xpio.tqueue()
      local pair = { assert(xpio.socketpair()) }
      local a = pair[1]
      local t = { _queue = q }
      assert.is_true(a:when_read(t))
      pair = nil  -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      assert_tasks({ t }, q:wait(2))
      assert.same({ n = 1 }, table.pack(a:try_read(10)))   -- a single nil: end of stream
      a:close()
      q:close()
    end)

    it("tasks waiting under the scheduler when their socket is closed wake with nil, message", function()
      local sched = fresh_sched()
      local a, b = assert(xpio.socketpair())
      local got = {}
      run(sched, 5, function()
        got[1] = table.pack(a:read(10))
      end, function()
        got[2] = table.pack(a:read(10))
      end, function()
        sched.sleep(0.05)
        assert.is_true(a:close())
      end)
      for i = 1, 2 do
        assert.is_nil(got[i][1])
        assert.is_string(got[i][2])
      end
      b:close()
    end)
  end)

  describe("readiness that nobody waits for any more", function()
    -- Level-triggered readiness outlives the task it was for: the data a
    -- returned task did not read, a socket that stays writable. The next wait
    -- must not end early because of it: "empty if the timeout expired first".
    -- How a task is made ready and returned, leaving the readiness behind.
    local leave = {
      readable = function(a, b, t)
        assert.is_true(a:when_read(t))
        assert.equal(1, b:try_write("x"))          -- "x" stays unread
      end,
      writable = function(a, _, t) assert.is_true(a:when_write(t)) end,
    }
    for _, how in ipairs({ "readable", "writable" }) do
      it("a socket left " .. how .. " after its task was returned does not cut tqueue:wait(0.3) short", function()
        local q = xpio.tqueue()
        local a, b = assert(xpio.socketpair())
        local t = { _queue = q }
        leave[how](a, b, t)
        assert_tasks({ t }, q:wait(1))
        local t0 = xpio.gettime()
        local ready = q:wait(0.3)
        local elapsed = xpio.gettime() - t0
        assert.same({}, ready)
        assert.is_true(elapsed >= 0.28, string.format("tqueue:wait(0.3) returned an empty array after %.6f s", elapsed))
        a:close()
        b:close()
        q:close()
      end)
    end

    it("tqueue:wait() with no timeout returns the task that becomes ready, not an early empty array", function()
      local q = xpio.tqueue()
      local a, b = assert(xpio.socketpair())
      local t = { _queue = q }
      assert.is_true(a:when_read(t))
      assert.equal(1, b:try_write("x"))
      assert_tasks({ t }, q:wait(1))             -- "x" stays unread
      local r, w = assert(xpio.pipe())
      local p = assert(xpio.spawn({ "sh", "-c", "sleep 0.2; echo late" }, xpio.env, { [1] = w }))
      local reader = { _queue = q }
      assert.is_true(r:when_read(reader))
      local t0 = xpio.gettime()
      local ready = q:wait()                     -- no limit: returns when a task is ready
      local elapsed = xpio.gettime() - t0
      assert.is_table(ready)
      assert.is_true(#ready > 0, string.format("tqueue:wait() returned an empty array after %.6f s", elapsed))
      assert_tasks({ reader }, ready)
      assert.equal("late\n", r:try_read(100))
      while not p:try_wait() do q:wait(0.01) end
      a:close()
      b:close()
      r:close()
      q:close()
    end)
  end)

  describe("user code that fails or walks away between scheduling and waiting", function()
    it("a Lua error between when_read and the wait leaves the queue consistent", function()
      local q = xpio.tqueue()
      local a, b = assert(xpio.socketpair())
      local t = { _queue = q }
      local co = coroutine.create(function()
        assert(a:when_read(t))
        error("task failed after scheduling")
      end)
      local ok, err = coroutine.resume(co)
      assert.is_false(ok)
      assert.matches("task failed after scheduling", err)
      assert.is_false(q:isEmpty())
      assert.is_function(t._dequeue)
      -- the owner can dequeue it...
      t:_dequeue()
      assert.is_nil(t._dequeue)
      assert.is_nil(t._dequeuedata)
      assert.is_true(q:isEmpty())
      assert.equal(1, b:try_write("x"))
      assert.same({}, q:wait(0.05))
      -- ... or let it be returned, once
      local t2 = { _queue = q }
      local co2 = coroutine.create(function()
        assert(a:when_read(t2))
        error("again")
      end)
      assert.is_false((coroutine.resume(co2)))
      assert_tasks({ t2 }, q:wait(1))
      assert.same({}, q:wait(0))
      assert.is_true(q:isEmpty())
      -- the queue goes on working
      local t3 = { _queue = q }
      assert.is_true(b:when_write(t3))
      assert_tasks({ t3 }, q:wait(1))
      a:close()
      b:close()
      q:close()
    end)

    it("under xpio.sched, a task that fails between when_read and its yield does not break the scheduler", function()
      local sched = fresh_sched()
      local a, b = assert(xpio.socketpair())
      local c, d = assert(xpio.socketpair())
      local got = {}
      local failing
      run(sched, 5, function()
        failing = sched.spawn(function()
          assert(a:when_read(sched.current()))
          error("failed while scheduled", 0)
        end)
        got.join = table.pack(pcall(sched.join, failing))
        -- the failed task's socket becomes readable: nobody may be resumed for it
        assert.equal(1, b:try_write("x"))
        sched.sleep(0.05)
        got.other = c:read(10)
      end, function()
        sched.sleep(0.1)
        assert.equal(2, d:try_write("ok"))
      end)
      assert.is_false(got.join[1])
      assert.matches("^failed while scheduled", got.join[2])
      assert.equal("ok", got.other)
      -- and the scheduler is still usable afterwards
      local again = {}
      run(sched, 5, function()
        sched.sleep(0.01)
        again.done = true
      end)
      assert.is_true(again.done)
      for _, s in ipairs({ a, b, c, d }) do s:close() end
    end)

    it("a coroutine abandoned while it waits: dequeued, or dropped, the queue stays consistent", function()
      local q = xpio.tqueue()
      local a, b = assert(xpio.socketpair())
      -- dequeued by its owner
      local t1 = { _queue = q }
      local co1 = coroutine.create(function() return a:read(10) end)
      xpio.setCurrentTask(t1)
      assert.is_true((coroutine.resume(co1)))
      xpio.setCurrentTask(nil)
      assert.equal("suspended", coroutine.status(co1))
      assert.is_function(t1._dequeue)
      t1:_dequeue()
      assert.is_nil(t1._dequeue)
      assert.is_true(q:isEmpty())
      co1 = nil  -- luacheck: ignore 311
      -- dropped: never resumed, never dequeued
      local t2 = { _queue = q }
      local co2 = coroutine.create(function() return a:read(10) end)
      xpio.setCurrentTask(t2)
      assert.is_true((coroutine.resume(co2)))
      xpio.setCurrentTask(nil)
      co2 = nil  -- luacheck: ignore 311
      collectgarbage()
      collectgarbage()
      assert.is_false(q:isEmpty())
      assert.equal(1, b:try_write("x"))
      assert_tasks({ t2 }, q:wait(1))           -- returned once, to nobody
      assert.same({}, q:wait(0.05))
      assert.is_true(q:isEmpty())
      -- the queue and the socket go on working
      assert.equal("x", a:try_read(10))
      local t3 = { _queue = q }
      assert.is_true(a:when_read(t3))
      assert.equal(1, b:try_write("y"))
      assert_tasks({ t3 }, q:wait(1))
      a:close()
      b:close()
      q:close()
    end)
  end)
end)
