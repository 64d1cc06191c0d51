-- The XPIO echo server that Tests/hostile/hostile.py attacks (issue 14).
--
-- Public API only (xpio and xpio.sched): one task accepts, one task per
-- connection echoes. What makes it fit to face a hostile peer:
--
-- * accept errors never end the accept loop and never make it spin. On
--   EMFILE the pending connection stays in the listen queue, so the listener
--   stays readable and an immediate retry would fail again at once, forever:
--   the loop sleeps instead, doubling the pause from --backoff-min up to
--   --backoff-max, and starts over at the minimum after the first success.
--   `--backoff-max 0` retries at once: a naive server, kept so that the
--   driver can show that its CPU measurement catches a spin;
-- * a connection's read or write error (reset, broken pipe) ends that
--   connection only, and its socket is always closed;
-- * writes loop until everything is written, so every byte read is echoed
--   before the server reads further (a peer that never reads only blocks
--   its own task).
--
-- TLS mode (--cert and --key, PEM files): each connection is wrapped with
-- tls.server in its own task, which handshakes under sched.timeout
-- (--handshake-timeout seconds; a slow or silent peer holds its own task and
-- descriptor that long, no one else's) and then echoes lines (readline with
-- the end of line kept, at most --max-line bytes), each read bounded by
-- --idle-timeout seconds when that is not 0. Every way a connection ends is
-- counted under its phase ("handshake: <message>", "read: <message>",
-- "write: <message>", "clean" for the peer's close_notify). A Lua error in a
-- connection's task is caught, printed as `lua-error <message>` and counted:
-- it is a bug of XPIO's (peer behaviour must come back as nil, message), and
-- the driver fails on it, but the server goes on so that the run does too.
--
-- Protocol with the driver, on stdout (line-buffered):
--   listening <address>
--   accept-error <message>                      first failure of a streak
--   accept-resumed <failures> <seconds>         first success after a streak
--   stats accepted=<n> accept_failures=<n> bytes=<n> errors=<message:n,...>
--   lua-error <message>                         TLS mode: a connection task raised
-- A line "stats" on stdin makes the server print its stats line at once (the
-- driver diffs them around an attack). The server stops when its stdin
-- reaches end of file (the driver closes it, or dies), so it cannot outlive
-- the driver.
--
--   lua5.4 Tests/hostile/echo_server.lua [--listen 127.0.0.1:0]
--       [--backoff-min 0.001] [--backoff-max 0.05]
--       [--cert leaf.pem --key leaf.key [--handshake-timeout 2] [--idle-timeout 0] [--max-line 65536]
--        [--keep-wrap-result no] [--broken no]]
local xpio = require "xpio"
local sched = require "xpio.sched"

local options = { listen = "127.0.0.1:0", ["backoff-min"] = "0.001", ["backoff-max"] = "0.05", backlog = "128",
  cert = false, key = false, ["keep-wrap-result"] = "no", broken = "no",
  ["handshake-timeout"] = "2", ["idle-timeout"] = "0", ["max-line"] = "65536" }
do
  local i = 1
  while i <= #arg do
    local name = arg[i]:match("^%-%-(.+)$")
    if not name or options[name] == nil or arg[i + 1] == nil then
      io.stderr:write("echo_server.lua: bad argument ", arg[i], "\n")
      os.exit(2)
    end
    options[name] = arg[i + 1]
    i = i + 2
  end
end
local BACKOFF_MIN = assert(tonumber(options["backoff-min"]), "--backoff-min: number expected")
local BACKOFF_MAX = assert(tonumber(options["backoff-max"]), "--backoff-max: number expected")
local BACKLOG = assert(math.tointeger(tonumber(options.backlog)), "--backlog: integer expected")
local HANDSHAKE_TIMEOUT = assert(tonumber(options["handshake-timeout"]), "--handshake-timeout: number expected")
local IDLE_TIMEOUT = assert(tonumber(options["idle-timeout"]), "--idle-timeout: number expected")
local KEEP_WRAP_RESULT = options["keep-wrap-result"] == "yes"
-- --broken KIND: a deliberately broken TLS server, to show that the driver's
-- checks fail (hostile.py --tls-broken): "no-timeout" handshakes without a
-- deadline, "spin" polls try_handshake in a loop, "raise" raises on a read
-- error, "leak" keeps the socket of a connection that failed, "inline"
-- handshakes in the accept loop (one slow peer holds up every new client).
local BROKEN = options.broken
local leaked = {}   -- with --broken leak: sockets never closed
local wrap_results = {}   -- luacheck: ignore 241 (held, never read: socket -> tls.wrap's result, --keep-wrap-result yes)
local MAX_LINE = assert(math.tointeger(tonumber(options["max-line"])), "--max-line: integer expected")

local tls, tls_context
if options.cert or options.key then
  tls = require "xpio.tls"
  tls_context = assert(tls.server { cert = assert(options.cert, "--cert needed"), key = assert(options.key, "--key needed") })
end

io.stdout:setvbuf("line")

local stats = { accepted = 0, accept_failures = 0, bytes = 0, errors = {}, lua_errors = 0, handshakes = 0, open = 0 }

local function count_error(message)
  stats.errors[message] = (stats.errors[message] or 0) + 1
end

local listener = assert(xpio.socket("TCP"))
assert(listener:setsockopt("SO_REUSEADDR", true))
assert(listener:bind(options.listen))
assert(listener:listen(BACKLOG))
print("listening " .. assert(listener:getsockname()))

--- Writes all of `data`; true, or nil and the message of the failed write.
local function write_all(conn, data)
  local at = 1
  while at <= #data do
    local n, err = conn:write(at == 1 and data or data:sub(at))
    if not n then return nil, err end
    at = at + n
  end
  return true
end

--- Echoes one connection until end of stream or an error, then closes it.
local function echo(conn)
  while true do
    local data, err = conn:read(65536)
    if not data then
      if err then count_error(err) end
      break
    end
    local ok, werr = write_all(conn, data)
    if not ok then
      count_error(werr)
      break
    end
    stats.bytes = stats.bytes + #data
  end
  conn:close()
end

--- Calls `fn(...)` under `seconds` of sched.timeout, or directly for 0.
local function bounded(seconds, fn, ...)
  if seconds > 0 then return sched.timeout(seconds, fn, ...) end
  return fn(...)
end

--- TLS mode: handshake within HANDSHAKE_TIMEOUT, then echo lines until the
--- peer's close_notify or an error; the socket is always closed.
local function tls_echo(conn)
  -- TLS writes a line longer than one record (16 KiB) as several sends:
  -- under Nagle the second waits for the peer's delayed ACK, 40 ms per
  -- line (see Tests/hostile/README.md). The attacks want the good clients
  -- to keep the server busy, so no Nagle here.
  conn:setsockopt("TCP_NODELAY", true)
  -- The spec's idiom: wrap works in place, its result is the same socket.
  -- --keep-wrap-result yes holds the result too: a workaround for the bug
  -- of this tree's tls.wrap, which returns a second userdata for the socket
  -- whose collection closes it (see Tests/hostile/README.md).
  local ok, err = true, nil
  if BROKEN ~= "inline" then ok, err = tls.wrap(conn, tls_context) end
  if KEEP_WRAP_RESULT then wrap_results[conn] = wrap_results[conn] or ok end
  if ok and BROKEN == "no-timeout" then
    ok, err = conn:handshake()
  elseif ok and BROKEN == "spin" then
    local deadline = xpio.gettime() + HANDSHAKE_TIMEOUT
    repeat
      ok, err = conn:try_handshake()
      if err == "retry" then sched.sleep(0) end
    until err ~= "retry" or xpio.gettime() > deadline
    if err == "retry" then err = "timeout" end
  elseif ok then               -- (with "inline" it is done already: true at once)
    ok, err = sched.timeout(HANDSHAKE_TIMEOUT, conn.handshake, conn)
  end
  if not ok then
    count_error("handshake: " .. tostring(err))
    return
  end
  stats.handshakes = stats.handshakes + 1
  while true do
    local line, rerr, partial = bounded(IDLE_TIMEOUT, conn.readline, conn, true, MAX_LINE)
    if not line then
      if rerr == nil then
        count_error("clean")
      else
        count_error("read: " .. tostring(rerr))
        if BROKEN == "raise" then error("read failed: " .. tostring(rerr)) end
        if BROKEN == "leak" then leaked[conn] = true end
        if partial and #partial > 0 then conn:write(partial) end
      end
      return
    end
    local n, werr = conn:write(line)
    if not n then
      count_error("write: " .. tostring(werr))
      return
    end
    stats.bytes = stats.bytes + #line
  end
end

--- Runs a TLS connection's task: whatever happens, its socket is closed and
--- a Lua error is reported, not raised (it would stop the scheduler).
local function tls_connection(conn)
  stats.open = stats.open + 1
  local ok, err = xpcall(tls_echo, debug.traceback, conn)
  stats.open = stats.open - 1
  if not ok then
    stats.lua_errors = stats.lua_errors + 1
    print("lua-error " .. tostring(err):gsub("\n", " | "))
  end
  if not leaked[conn] then
    conn:close()
    wrap_results[conn] = nil    -- (a leaked socket keeps it: its collection would close the socket)
  end
end

-- A failure that consumed the pending connection (the peer gave up before
-- accept took it): the next one may be accepted at once.
local CONSUMED = { ["Software caused connection abort"] = true, ["Protocol error"] = true }

local function accept_loop()
  local delay = BACKOFF_MIN
  local streak, streak_start = 0, 0
  while true do
    local conn, err = listener:accept()
    if conn then
      if streak > 0 then
        print(string.format("accept-resumed %d %.3f", streak, xpio.gettime() - streak_start))
        streak, delay = 0, BACKOFF_MIN
      end
      stats.accepted = stats.accepted + 1
      if BROKEN == "inline" then
        wrap_results[conn] = KEEP_WRAP_RESULT and tls.wrap(conn, tls_context) or nil
        if not KEEP_WRAP_RESULT then tls.wrap(conn, tls_context) end
        local ok, herr = sched.timeout(HANDSHAKE_TIMEOUT, conn.handshake, conn)
        if not ok then count_error("handshake: " .. tostring(herr)); conn:close() end
      end
      if conn:fileno() then sched.spawn(tls and tls_connection or echo, conn) end
    elseif err == "xpio: socket is closed" then
      return
    else
      stats.accept_failures = stats.accept_failures + 1
      count_error("accept: " .. err)
      if not CONSUMED[err] then
        if streak == 0 then
          streak_start = xpio.gettime()
          print("accept-error " .. err)
        end
        streak = streak + 1
        -- EMFILE, ENFILE, ENOBUFS, ENOMEM or anything unknown: the
        -- condition will not clear by itself within microseconds.
        if BACKOFF_MAX > 0 then
          sched.sleep(delay)
          delay = math.min(delay * 2, BACKOFF_MAX)
        end
      end
    end
  end
end

local function print_stats()
  local parts = {}
  for message, n in pairs(stats.errors) do parts[#parts + 1] = message:gsub("[ ,=]", "_") .. ":" .. n end
  table.sort(parts)
  print(string.format("stats accepted=%d accept_failures=%d bytes=%d handshakes=%d open=%d lua_errors=%d errors=%s",
    stats.accepted, stats.accept_failures, stats.bytes, stats.handshakes, stats.open, stats.lua_errors,
    table.concat(parts, ",")))
end

-- Stop when stdin ends: the driver closed it, or is gone.
local function watch_stdin()
  local stdin = assert(xpio.fdopen(0))
  while true do
    local line = stdin:readline()
    if not line then break end
    if line == "stats" then print_stats() end
  end
  listener:close()
  print_stats()
  io.stdout:flush()
  os.exit(0)
end

sched.spawn(accept_loop)
sched.spawn(watch_stdin)
sched.run()
