-- Loaded by busted before every spec file (make test passes --helper).
-- LUA_CPATH points at build/xpio.so and LUA_PATH at lua/ (see the Makefile).
-- Spec files get it with `local helper = require "helper"`.
local helper = {}

--- luv, loaded once per Lua state, or nil when it is not installed. busted
--- unloads what a spec file required when the file ends, and luv 1.44
--- crashes or, worse, stops calling the callbacks of the first copy's
--- handles when it is required a second time in one state (luvit/luv#244,
--- fixed by luvit/luv#821): every spec file takes this one copy, kept in
--- the registry.
function helper.luv()
  local registry = debug.getregistry()
  local key = "xpio.tests.luv"
  if registry[key] == nil then
    local ok, mod = pcall(require, "luv")
    registry[key] = ok and mod or false
  end
  return registry[key] or nil
end

--- Whether the module under test is the portable build (`xpio.platform()`
--- is "posix": docs/PORTING.md): poll, the SIGCHLD pipe and self-pipes
--- always, and the Linux-only features answer `helper.UNSUPPORTED`.
--- Asked of the module itself, not of the environment, so a test cannot
--- believe it runs the Linux path when it does not.
function helper.portable()
  return require("xpio").platform() == "posix"
end

--- What a Linux-only feature answers in the portable build.
helper.UNSUPPORTED = "xpio: not supported on this system"

--- Whether task queues use poll(2): XPIO_BACKEND=poll, or the portable build.
function helper.poll_backend()
  return os.getenv("XPIO_BACKEND") == "poll" or helper.portable()
end

--- Whether children are waited for through the SIGCHLD self-pipe rather
--- than pidfds: XPIO_NO_PIDFD=1, or the portable build.
function helper.sigchld_pipe()
  return os.getenv("XPIO_NO_PIDFD") == "1" or helper.portable()
end

--- The interpreter for child interpreters the tests start: XPIO_LUA
--- (check-memory points it at lua5.4 under valgrind), else lua5.4.
helper.LUA = os.getenv("XPIO_LUA") or "lua5.4"

--- The repository root, absolute (this file is Tests/lua/helper.lua).
helper.ROOT = (function()
  local source = debug.getinfo(1, "S").source:gsub("^@", "")
  local root = source:match("^(.*)/Tests/lua/[^/]*$") or "."
  local p = assert(io.popen("cd '" .. root:gsub("'", "'\\''") .. "' && pwd"))
  local absolute = p:read("l")
  p:close()
  return absolute
end)()

--- `s` quoted for sh.
function helper.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs the shell command `cmd` with its stderr joined to its stdout; returns
--- that output, whether it exited 0 (a boolean, for assert.is_true and
--- assert.is_false), and how it ended as io.popen's close reports it.
function helper.run_command(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1"))
  local output = p:read("a")
  local _, how, code = p:close()
  return output, how == "exit" and code == 0, how, code
end

--- Runs the Lua source `script` in a child interpreter (helper.LUA) under
--- `sh -c 'prefix; exec lua file'`, so that `prefix` can set limits or
--- export variables for the child alone ("ulimit -n 64", "export X=1").
--- The script goes through a temporary file, removed afterwards. Returns
--- what helper.run_command returns.
function helper.run_lua_script(script, prefix)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local command = (prefix and (prefix .. "; ") or "") .. "exec " .. helper.shell_quote(helper.LUA) .. " "
    .. helper.shell_quote(path)
  local output, ok, how, code = helper.run_command("sh -c " .. helper.shell_quote(command))
  os.remove(path)
  return output, ok, how, code
end

--- This interpreter's process id.
function helper.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

-- The names in directory `path`, listed into a file through os.execute, so
-- that no pipe of ours is open (and no child of ours is running) while the
-- caller looks at what the listing describes.
local function directory_entries(path)
  local listing = os.tmpname()
  assert(os.execute("ls " .. path .. " > " .. listing))
  local names = {}
  for line in io.lines(listing) do names[#names + 1] = line end
  os.remove(listing)
  return names
end

--- The descriptors process `pid` (default: this one) has open, as a sorted
--- list of numbers.
function helper.fd_list(pid)
  local list = {}
  for _, name in ipairs(directory_entries("/proc/" .. (pid or helper.pid()) .. "/fd")) do
    list[#list + 1] = tonumber(name)
  end
  table.sort(list)
  return list
end

function helper.open_fds() return #helper.fd_list() end

--- The process ids of this process's children, zombies included. The
--- kernel files a child under the thread that forked it: by default only
--- the main thread's are listed; `every_thread` lists every thread's
--- (process_spec counts children that way).
function helper.children(every_thread)
  local pid = helper.pid()
  local threads = every_thread and directory_entries("/proc/" .. pid .. "/task") or { pid }
  local list = {}
  for _, tid in ipairs(threads) do
    local f = io.open("/proc/" .. pid .. "/task/" .. tid .. "/children")
    if f then
      for child in (f:read("a") or ""):gmatch("%d+") do list[#list + 1] = tonumber(child) end
      f:close()
    end
  end
  return list
end

function helper.children_count() return #helper.children() end

--- Children present now that were not in `before` (a list from
--- helper.children), sorted: a test that spawns checks that none of its
--- own is left, where a count would take a child of an earlier test that
--- ends meanwhile for a leak.
function helper.new_children(before, every_thread)
  local old = {}
  for _, pid in ipairs(before) do old[pid] = true end
  local list = {}
  for _, pid in ipairs(helper.children(every_thread)) do
    if not old[pid] then list[#list + 1] = pid end
  end
  table.sort(list)
  return list
end

--- The fields of /proc/<pid>/stat that follow the command name: state
--- (a letter, "Z" for a zombie), ppid, pgrp and session; nil when there is
--- no such process.
function helper.proc_stat(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local fields = {}
  for word in text:match("%)%s+(.*)$"):gmatch("%S+") do fields[#fields + 1] = word end
  return { state = fields[1], ppid = tonumber(fields[2]), pgrp = tonumber(fields[3]), session = tonumber(fields[4]) }
end

--- Has process `pid` stopped running: gone, or a zombie nobody reaped yet?
function helper.has_exited(pid)
  local st = helper.proc_stat(pid)
  return st == nil or st.state == "Z"
end

--- Waits (up to 10 s, without spawning anything) until process `pid` runs
--- the program `comm`: a test that looks at a child's signal state must see
--- the program, not the child between fork and exec.
function helper.wait_exec(pid, comm)
  for _ = 1, 1000 do
    local f = io.open("/proc/" .. pid .. "/comm")
    local name = f and f:read("l")
    if f then f:close() end
    if name == comm then return end
    helper.nap(0.01)
  end
  error("process " .. pid .. " never ran " .. comm)
end

--- Waits (up to 10 s) until process `pid` runs `comm` and sleeps in a
--- blocking call (state "S"). A test that lists a child's descriptors needs
--- this rather than `wait_exec`: right after exec the dynamic loader opens
--- the shared libraries, and the program's setlocale the locale archive,
--- each at the lowest free descriptor, so a listing taken then can show a
--- descriptor the program opened itself for a moment.
function helper.wait_blocked(pid, comm)
  helper.wait_exec(pid, comm)
  for _ = 1, 1000 do
    local st = helper.proc_stat(pid)
    if st == nil or st.state == "Z" then error("process " .. pid .. " ended before it blocked") end
    if st.state == "S" then return end
    helper.nap(0.01)
  end
  error("process " .. pid .. " never blocked")
end

--- Open-file status flags of /proc/<pid>/fdinfo (the kernel's values).
helper.O_NONBLOCK = 0x800    -- octal 04000
helper.O_CLOEXEC = 0x80000   -- octal 02000000

--- The open-file flags of descriptor `fd` of process `pid` (default: this
--- one), from /proc/<pid>/fdinfo: what the kernel holds, not what XPIO says.
function helper.fd_flags(fd, pid)
  local f = assert(io.open("/proc/" .. (pid or "self") .. "/fdinfo/" .. fd))
  local text = f:read("a")
  f:close()
  return tonumber(assert(text:match("flags:%s*(%d+)")), 8)
end

--- This process's resident set size, in KiB.
function helper.rss_kb()
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)"))
end

--- A scheduler of its own for each test (xpio.sched keeps its state in the
--- module), so that a test that fails with tasks still waiting cannot stall
--- the next one.
--- The copy is strict (sched.onerror(sched.raise)): an assertion that fails
--- in a task fails the test instead of going to stderr; `lenient` keeps the
--- default handler, for the tests of that handler.
function helper.fresh_sched(lenient)
  package.loaded["xpio.sched"] = nil
  local sched = require "xpio.sched"
  package.loaded["xpio.sched"] = nil
  if not lenient then sched.onerror(sched.raise) end
  return sched
end

--- Runs `sched` until `is_done()` is true, with a watchdog task that
--- raises after `limit` seconds instead of letting a stuck test hang.
function helper.run_until(sched, limit, is_done)
  sched.spawn(function()
    local deadline = sched.now() + limit
    while not is_done() do
      if sched.now() > deadline then error(string.format("timeout: tasks still running after %g s", limit), 0) end
      sched.sleep(0.01)
    end
  end)
  local ok, err = pcall(sched.run)
  assert(ok, err)
end

--- Writes all of `data` to `s` with the blocking `write` (in a task),
--- raising on an error. A blocking write never answers "retry": it waits.
function helper.write_all(s, data)
  local at = 1
  while at <= #data do
    local n, err = s:write(at == 1 and data or data:sub(at))
    assert(n, err)
    assert(err ~= "retry")
    at = at + n
  end
end

--- Is `value` in the array `list`?
function helper.contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

--- True when every task (from sched.spawn) of `tasks` has finished.
function helper.all_done(tasks)
  for _, t in ipairs(tasks) do if not t.done then return false end end
  return true
end

--- Runs each function of `fns` as a task of `sched` until all are done, for
--- at most `limit` seconds; returns the tasks.
function helper.run_tasks(sched, limit, fns)
  local tasks = {}
  for i, fn in ipairs(fns) do tasks[i] = sched.spawn(fn) end
  helper.run_until(sched, limit, function() return helper.all_done(tasks) end)
  return tasks
end

--- Runs `fn(...)` as a task of `sched` and returns what it returned; a
--- task's error is raised from here. With a `limit` (seconds), a watchdog
--- task raises once it has passed (see run_until). Without one, sched.run
--- alone ends the run, and so its "deadlock" error still shows a task left
--- waiting on nothing, which the watchdog's timer would hide.
function helper.run_in_task(sched, limit, fn, ...)
  local results
  local task = sched.spawn(function(...) results = table.pack(fn(...)) end, ...)
  if limit then
    helper.run_until(sched, limit, function() return task.done end)
  else
    sched.run()
  end
  return table.unpack(results, 1, results.n)
end

--- Sleeps `seconds` (default 0.01) where there is no scheduler to sleep in,
--- without spinning: a wait on a private, empty tqueue. The queue is closed
--- at once, so a descriptor count taken just after does not see it.
function helper.nap(seconds)
  local xpio = require "xpio"
  local q = xpio.tqueue()
  q:wait(seconds or 0.01)
  q:close()
end

--- Calls `fn(...)` until it stops answering nil, "retry" (5 s at most),
--- napping in between; returns everything the last call returned. For the
--- try_ functions, when a test wants the outcome and not the retries.
function helper.poll(fn, ...)
  local xpio = require "xpio"
  local deadline = xpio.gettime() + 5
  while true do
    local r = table.pack(fn(...))
    if not (r[1] == nil and r[2] == "retry") then return table.unpack(r, 1, r.n) end
    assert(xpio.gettime() < deadline, "still \"retry\" after 5 seconds")
    helper.nap()
  end
end

--- Waits on `q` until it returns `task` (at most `limit` seconds, default
--- 2); returns every task the waits returned meanwhile, so that a caller
--- waiting for two tasks can tell whether the other one came with it.
function helper.wait_for(q, task, limit)
  local xpio = require "xpio"
  local deadline = xpio.gettime() + (limit or 2)
  local got = {}
  while xpio.gettime() < deadline do
    local ready = assert(q:wait(deadline - xpio.gettime()))
    for _, t in ipairs(ready) do got[#got + 1] = t end
    if helper.contains(got, task) then return got end
  end
  error("task not returned within " .. (limit or 2) .. " s", 2)
end

local chunks = {}

--- Writes into `s` with try_write, `chunk_size` bytes (default 64 KiB) at a
--- time, until it would block; returns the number of bytes written. Tests
--- use it to make a writer wait, or a reader find data, for sure.
function helper.fill(s, chunk_size)
  chunk_size = chunk_size or 65536
  chunks[chunk_size] = chunks[chunk_size] or string.rep("x", chunk_size)
  local chunk, total = chunks[chunk_size], 0
  while true do
    local n, err = s:try_write(chunk)
    if not n then
      assert(err == "retry", err)
      return total
    end
    total = total + n
  end
end

--- Reads from `s` with try_read until it would block; returns the number
--- of bytes read (what a helper.fill on the peer put there, say).
function helper.drain(s)
  local total = 0
  while true do
    local data, err = s:try_read(65536)
    if not data then
      assert(err == "retry", tostring(err))
      return total
    end
    total = total + #data
  end
end

--- Reads `r` with the blocking read (in a task) to end of stream, closes
--- it, and returns everything read. A read error fails the test.
function helper.read_all(r)
  local luassert = require "luassert"
  local parts = {}
  while true do
    local data, err = r:read(4096)
    if data == nil then
      luassert.is_nil(err, "read failed")
      break
    end
    parts[#parts + 1] = data
  end
  r:close()
  return table.concat(parts)
end

--- Reads exactly `n` bytes from `s` with the blocking read (in a task);
--- raises on an error or an end of stream that comes first.
function helper.read_exactly(s, n)
  local parts, have = {}, 0
  while have < n do
    local data, err = s:read(math.min(n - have, 65536))
    assert(data, err or "end of stream")
    parts[#parts + 1] = data
    have = have + #data
  end
  return table.concat(parts)
end

--- A listening TCP socket of `family` (default inet) on `address` (default
--- port 0 on loopback: 127.0.0.1, or [::1] for inet6) with `backlog` (default
--- listen's), and the address it got.
function helper.listener(family, address, backlog)
  local xpio = require "xpio"
  local l = assert(xpio.socket("TCP", family))
  assert(l:bind(address or (family == "inet6" and "[::1]:0" or "127.0.0.1:0")))
  assert(l:listen(backlog))
  return l, assert(l:getsockname())
end

--- An address on 127.0.0.1 where nothing listens (its port was free a
--- moment ago): for refused connections, or for a port to bind explicitly.
function helper.unused_address()
  local xpio = require "xpio"
  local s = assert(xpio.socket("TCP"))
  assert(s:bind("127.0.0.1:0"))
  local address = assert(s:getsockname())
  s:close()
  return address
end

--- A connected TCP pair on loopback, made with try_ calls only: the client
--- and the accepted socket.
function helper.tcp_pair()
  local xpio = require "xpio"
  local q = xpio.tqueue()
  local l = assert(xpio.socket("TCP"))
  assert(l:bind("127.0.0.1:0"))
  assert(l:listen())
  local addr = l:getsockname()
  local c = assert(xpio.socket("TCP"))
  local ok, err = c:try_connect(addr)
  local s
  local deadline = xpio.gettime() + 5
  while not (s and ok) do
    assert(xpio.gettime() < deadline, "tcp_pair: timed out")
    if not ok then
      assert(err == "retry", err)
      ok, err = c:try_connect(addr)
    end
    if not s then
      local e
      s, e = l:try_accept()
      assert(s or e == "retry", e)
    end
    if not (s and ok) then q:wait(0.005) end
  end
  l:close()
  q:close()
  return c, s
end

package.loaded["helper"] = helper
return helper
