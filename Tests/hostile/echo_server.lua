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
-- Protocol with the driver, on stdout (line-buffered):
--   listening <address>
--   accept-error <message>                      first failure of a streak
--   accept-resumed <failures> <seconds>         first success after a streak
--   stats accepted=<n> accept_failures=<n> bytes=<n> errors=<message:n,...>
-- The server stops when its stdin reaches end of file (the driver closes
-- it, or dies), so it cannot outlive the driver.
--
--   lua5.4 Tests/hostile/echo_server.lua [--listen 127.0.0.1:0]
--       [--backoff-min 0.001] [--backoff-max 0.05]
local xpio = require "xpio"
local sched = require "xpio.sched"

local options = { listen = "127.0.0.1:0", ["backoff-min"] = "0.001", ["backoff-max"] = "0.05", backlog = "128" }
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

io.stdout:setvbuf("line")

local stats = { accepted = 0, accept_failures = 0, bytes = 0, errors = {} }

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
      sched.spawn(echo, conn)
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
  print(string.format("stats accepted=%d accept_failures=%d bytes=%d errors=%s",
    stats.accepted, stats.accept_failures, stats.bytes, table.concat(parts, ",")))
end

-- Stop when stdin ends: the driver closed it, or is gone.
local function watch_stdin()
  local stdin = assert(xpio.fdopen(0))
  while stdin:read(4096) do end
  listener:close()
  print_stats()
  io.stdout:flush()
  os.exit(0)
end

sched.spawn(accept_loop)
sched.spawn(watch_stdin)
sched.run()
