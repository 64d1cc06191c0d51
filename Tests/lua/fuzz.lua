--- XPIO's spec-driven fuzz driver (issue 8).
--
--   lua5.4 Tests/lua/fuzz.lua            (from the repository root, with
--                                         LUA_CPATH/LUA_PATH as for the tests)
--
-- It reads build/gen/fuzz_cases.lua (generated from Spec/*.spec; another file
-- with XPIO_FUZZ_CASES) and calls every function and method with random
-- argument lists: nil, booleans, integers at the edges, NaN and infinities,
-- empty, long, NUL-carrying and non-UTF-8 strings, tables, functions,
-- coroutines, objects of the wrong kind, closed objects, too many and too few
-- arguments. Blocking functions run both inside a coroutine, with a current
-- task whose `_queue` is a fresh queue, and outside one. Every call must end
-- as values, `nil, message` or a Lua error with a string message; never a
-- crash, a hang, or a message containing "internal".
--
-- Beside the calls, an address-format oracle written from the documents
-- (Spec/socket.spec, docs/API.md: address_oracle.lua) judges random and
-- mutated address strings and compares its verdict with
-- `xpio.socket("UDP"):bind(addr)` and, after a successful bind, with
-- `getsockname`.
--
-- Environment:
--   XPIO_FUZZ_SEED     the seed (default: time-based); printed at the start
--   XPIO_FUZZ_SECONDS  how long to run (default 20)
--   XPIO_FUZZ_CASES    the cases file (default build/gen/fuzz_cases.lua)
--   XPIO_FUZZ_STALL    seconds without a new call that count as a hang (30)
--
-- The script runs the fuzzer in a child interpreter (a "worker") under a
-- watchdog, so that a crash or a hang is reported with the seed and the call
-- that was running (the worker records each call in a file before making
-- it; a record unchanged for 30 s is a hang). Each call is also timed: one
-- that takes over 2 s is a failure. A failure
-- prints the seed and the call and exits 1. A clean run prints
-- "fuzz: N calls, 0 failures", after checking that it closed everything it
-- opened: no descriptor and no child is left over.
--
-- Sandboxing: spawn only ever runs `true` or a program that does not exist;
-- only processes from the kind's example constructor are signalled; fdopen
-- only gets descriptors the fuzzer owns (or numbers that are not open),
-- adopt only numbers that are not open (two owners would close each other's
-- reused numbers); open makes and writes files in the fuzzer's directory
-- only (or opens /dev/null), and a descriptor `detach` gave up is adopted back into
-- the pool (so that nothing leaks);
-- addresses given to connect and bind are rewritten to loopback (and connect
-- only to the fuzzer's own listeners or to port 1); host names, in addresses
-- and given to resolve, become localhost (no lookup leaves the machine);
-- `tqueue:wait` with a long
-- or endless timeout gets a task that is ready at once; blocking descriptors
-- made by setsockopt("O_NONBLOCK", false) or by spawn are set non-blocking
-- again.

local SCRIPT = arg and arg[0] or "Tests/lua/fuzz.lua"
-- The worker's interpreter: XPIO_LUA (check-memory's lua5.4 under
-- valgrind), else the one running this script.
local LUA = os.getenv("XPIO_LUA") or "lua5.4"
if arg and not os.getenv("XPIO_LUA") then
  local i = -1
  while arg[i - 1] do i = i - 1 end
  LUA = arg[i] or LUA
end

local helper = require "helper"   -- Tests/lua, on LUA_PATH as for the tests
local shell_quote = helper.shell_quote

local function env_number(name, default)
  local text = os.getenv(name)
  if text == nil or text == "" then return default end
  local value = tonumber(text)
  if not value then
    io.stderr:write("fuzz: ", name, " is not a number: ", text, "\n")
    os.exit(2)
  end
  return value
end

--------------------------------------------------------------------------------
-- Supervisor: runs the worker and reports what it cannot report itself.
--------------------------------------------------------------------------------

local WORKER_RECORD = os.getenv("XPIO_FUZZ_WORKER")
local WORKER_FAILED = 3   -- the worker's status after it reported a failure
local STALL = env_number("XPIO_FUZZ_STALL", 30)   -- seconds without a new call: the call hangs

if not WORKER_RECORD then
  local seed = math.tointeger(env_number("XPIO_FUZZ_SEED", nil))
  if not seed then
    -- time-based, and different for runs started in the same second
    local clock = math.floor(os.clock() * 1e6)
    seed = (os.time() * 1000003 + clock + math.floor(collectgarbage("count") * 1024)) % 2147483647
  end
  local seconds = env_number("XPIO_FUZZ_SECONDS", 20)
  print(string.format("fuzz: seed %d (XPIO_FUZZ_SEED=%d repeats this run), %g s", seed, seed, seconds))
  io.stdout:flush()
  local record = os.tmpname()
  -- The watchdog: the worker rewrites `record` before every call, so a
  -- record that has not changed for STALL seconds is a call that hangs.
  -- `limit` bounds the whole run (the worker stops itself after `seconds`,
  -- then cleans up).
  local limit = math.ceil(seconds + 60)
  local watchdog = [[
"$@" &
pid=$!
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
  sleep 0.5
  now=$(date +%s)
  age=$(( now - $(stat -c %Y "$XPIO_FUZZ_WORKER" 2>/dev/null || echo "$now") ))
  if [ "$age" -gt "$STALL" ] || [ $(( now - start )) -gt "$LIMIT" ]; then
    kill -KILL "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null
    exit 137
  fi
done
wait "$pid"
]]
  local command = string.format("XPIO_FUZZ_WORKER=%s XPIO_FUZZ_SEED=%d STALL=%d LIMIT=%d sh -c %s fuzz-watchdog %s %s",
    shell_quote(record), seed, STALL, limit, shell_quote(watchdog), shell_quote(LUA), shell_quote(SCRIPT))
  local ok, how, code = os.execute(command)
  local last = ""
  local f = io.open(record, "rb")
  if f then
    last = (f:read("a") or ""):gsub("%s+$", "")
    f:close()
  end
  os.remove(record)
  if ok then os.exit(0) end
  if how == "exit" and code == WORKER_FAILED then os.exit(1) end  -- the worker reported it
  local why
  if how == "exit" and code == 137 then
    why = string.format("hang: no call finished for %d s (or the run exceeded %d s)", STALL, limit)
  elseif how == "signal" or (how == "exit" and code > 128) then
    why = string.format("crash: the worker died of signal %d", how == "signal" and code or code - 128)
  else
    why = string.format("the worker exited with status %s (a Lua error in the driver? see above)", tostring(code))
  end
  print(string.format("fuzz: FAILURE (seed %d): %s", seed, why))
  print("fuzz: the call being made: " .. (last ~= "" and last or "(none recorded)"))
  print("fuzz: 0 calls reported, 1 failure")
  os.exit(1)
end

--------------------------------------------------------------------------------
-- Worker
--------------------------------------------------------------------------------

local xpio = require "xpio"

local SEED = math.tointeger(env_number("XPIO_FUZZ_SEED", 1)) or 1
local SECONDS = env_number("XPIO_FUZZ_SECONDS", 20)
local CALL_BUDGET = 2.0          -- seconds one call may take
local SMALL_TIMEOUT = 0.05       -- a tqueue:wait timeout that needs no guard
local KEEP_GOING = os.getenv("XPIO_FUZZ_KEEP_GOING") == "1"   -- report every failure (exploration)

math.randomseed(SEED)

local fd_list, children = helper.fd_list, helper.children

-- The cases file, generated from the spec (make test builds it).
local CASES_PATH = os.getenv("XPIO_FUZZ_CASES") or (helper.ROOT .. "/build/gen/fuzz_cases.lua")
local cases = dofile(CASES_PATH)
assert(type(cases) == "table" and type(cases.functions) == "table" and type(cases.kinds) == "table",
  "fuzz: bad cases file " .. CASES_PATH)

local record = assert(io.open(WORKER_RECORD, "wb"))
-- XPIO's process-wide state comes first, so that the baseline holds it: the
-- SIGCHLD self-pipe of the fallback without pidfds (XPIO_NO_PIDFD=1, or
-- valgrind, which does not know pidfd_open) lives as long as the process.
do
  local child = assert(xpio.spawn({ "true" }, {}))
  local q = xpio.tqueue()
  while not child:try_wait() do
    child:when_wait({ _queue = q })
    q:wait(1)
  end
  q:close()
end
-- xpio.run loads xpio.sched, whose queue lives as long as the process.
require "xpio.sched"
local baseline_fds = fd_list()
local baseline_children = #children()

--------------------------------------------------------------------------------
-- Rendering values (for failure reports)
--------------------------------------------------------------------------------

local kind_of_value   -- forward

local function render_string(s)
  local shown = s
  if #s > 48 then shown = s:sub(1, 48) end
  local text = '"' .. shown:gsub('[%c"\\\128-\255]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\%03d", c:byte())
  end) .. '"'
  if #s > 48 then text = text .. string.format("..(%d bytes in all)", #s) end
  return text
end

local function render(v, depth)
  depth = depth or 0
  local t = type(v)
  if t == "string" then return render_string(v)
  elseif t == "number" then
    if v ~= v then return "0/0" end
    if v == 1 / 0 then return "1/0" end
    if v == -1 / 0 then return "-1/0" end
    if math.type(v) == "integer" then
      if v == math.maxinteger then return "math.maxinteger" end
      if v == math.mininteger then return "math.mininteger" end
      return tostring(v)
    end
    return string.format("%.17g", v)
  elseif t == "table" then
    if depth > 1 then return "{...}" end
    local parts, n = {}, 0
    for k, x in pairs(v) do
      n = n + 1
      if n > 8 then parts[#parts + 1] = "..." break end
      parts[#parts + 1] = "[" .. render(k, depth + 1) .. "]=" .. render(x, depth + 1)
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  elseif t == "userdata" then
    return "<" .. (kind_of_value(v) or "userdata") .. " " .. tostring(v) .. ">"
  elseif t == "thread" then return "<coroutine>"
  elseif t == "function" then return "<function>"
  end
  return tostring(v)
end

local function render_args(args, n)
  local parts = {}
  for i = 1, n do parts[i] = render(args[i]) end
  return table.concat(parts, ", ")
end

--------------------------------------------------------------------------------
-- Failures
--------------------------------------------------------------------------------

local calls, failures = 0, 0
local stats = { yielded = 0, abandoned = 0, scheduled = 0, returned = 0, dequeued = 0, raised = 0, failed = 0, spawned = 0 }
local current_call = "(setup)"

-- The calls before the current one, printed with a failure: a broken
-- invariant is often the work of an earlier call.
local HISTORY = 40
local history, history_count = {}, 0

local function fail(message)
  failures = failures + 1
  print(string.format("fuzz: FAILURE (seed %d): %s", SEED, message))
  print("fuzz: call: " .. current_call)
  for i = math.max(1, history_count - HISTORY + 1), history_count - 1 do
    print(string.format("fuzz:   earlier call %d: %s", i - history_count, history[(i - 1) % HISTORY + 1]))
  end
  io.stdout:flush()
  if not KEEP_GOING then
    print(string.format("fuzz: %d calls, %d failure%s", calls, failures, failures == 1 and "" or "s"))
    os.exit(WORKER_FAILED)
  end
end

local record_length = 0
local function set_call(text)
  current_call = text
  history_count = history_count + 1
  history[(history_count - 1) % HISTORY + 1] = text:sub(1, 300)
  text = text:sub(1, 2000)
  local pad = record_length - #text        -- blank out the rest of a longer record
  record_length = #text
  record:seek("set", 0)
  record:write(text, pad > 0 and string.rep(" ", pad) or "")
  record:flush()
end

--------------------------------------------------------------------------------
-- Kinds, methods
--------------------------------------------------------------------------------

set_call("(setup: the kinds' example constructors)")
local kinds, methods, metatables = {}, {}, {}
for _, kind in ipairs(cases.kinds) do
  kinds[kind.name] = kind
  local example = assert(kind.example(xpio), "example for " .. kind.name)
  local mt = getmetatable(example)
  metatables[mt] = kind.name
  methods[kind.name] = mt.__index
  kind.first_example = example
end

kind_of_value = function(v)
  if type(v) ~= "userdata" then return nil end
  local mt = getmetatable(v)
  return mt and metatables[mt]
end

local function is_closed(v)
  local kind = kind_of_value(v)
  return (kind == "socket" or kind == "tqueue") and tostring(v):find(": closed$") ~= nil
end

--------------------------------------------------------------------------------
-- Random helpers
--------------------------------------------------------------------------------

local random = math.random
local function chance(p) return random() < p end
local function pick(list) return list[random(#list)] end

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(random(0, 255)) end
  return table.concat(t)
end

local LONG = string.rep("xpio", 20000)          -- 80 000 bytes

local EDGE_INTEGERS = { 0, -1, 1, 2, 3, 7, 64, 255, 256, 1023, 65535, 65536, 65537,
  2147483647, 2147483648, -2147483648, 4294967295, 4294967296,
  math.maxinteger, math.mininteger, math.maxinteger - 1, math.mininteger + 1 }
local EDGE_FLOATS = { 0 / 0, 1 / 0, -1 / 0, 0.5, -0.5, 0.0, -0.0, 1e308, -1e308, 2 ^ 63, 2 ^ 53 + 0.5, 1e-300 }

local function random_string()
  local r = random(12)
  if r == 1 then return ""
  elseif r == 2 then return LONG
  elseif r == 3 then return "a\0b"
  elseif r == 4 then return "\0"
  elseif r == 5 then return "\255\254\128\192"            -- not UTF-8
  elseif r == 6 then return random_bytes(random(0, 40))
  elseif r == 7 then return pick({ "TCP", "UDP", "tcp", "TCP\0", "r", "w", "rw", "SO_RCVBUF", "O_NONBLOCK", "TERM", "KILL" })
  elseif r == 8 then return tostring(pick(EDGE_INTEGERS))
  elseif r == 9 then return "127.0.0.1:0"
  elseif r == 10 then return string.rep("\0", random(1, 300))
  elseif r == 11 then return "0x10"
  end
  return "  1.5e3  "
end

--------------------------------------------------------------------------------
-- The address oracle (Tests/lua/address_oracle.lua): the address format as
-- the documents state it, for IPv4, IPv6, Unix paths and names.
--------------------------------------------------------------------------------

local addresses = require "address_oracle"
local judge, mutate, dotted = addresses.judge, addresses.mutate, addresses.dotted

-- Unix socket paths live here only (removed at the end).
local UNIX_DIR = os.tmpname()
os.remove(UNIX_DIR)
assert(os.execute("mkdir -m 700 " .. shell_quote(UNIX_DIR)))

local function random_address() return addresses.random_address(UNIX_DIR) end

local oracle_checks, oracle_wellformed, oracle_bound = 0, 0, 0

--- Judges a random or mutated address and compares with bind (on a UDP
--- socket of the verdict's family) and, once bound, with getsockname.
local function oracle_check()
  local addr
  if chance(0.5) then addr = random_address() else addr = mutate(random_address()) end
  local given = addr
  if chance(0.03) then given = pick({ 2130706433, 0, 80, 0.5, 1.25, 4294967295 }) addr = tostring(given) end
  set_call(string.format("oracle: bind(%s)", render(given)))
  calls = calls + 1
  oracle_checks = oracle_checks + 1
  local verdict = judge(addr)
  -- A name would be resolved (DNS for any but localhost), and a path
  -- outside UNIX_DIR would make a file: judged by the rules alone.
  if verdict and (verdict.family == "name" or (verdict.path and verdict.path:sub(1, #UNIX_DIR + 1) ~= UNIX_DIR .. "/")) then
    oracle_wellformed = oracle_wellformed + 1
    return
  end
  local family = verdict and verdict.family or pick({ "inet", "inet6", "unix" })
  local u, why = xpio.socket("UDP", family)
  if not u then
    fail("xpio.socket(\"UDP\", " .. family .. ") failed: " .. tostring(why))
    return
  end
  local ok, message = u:bind(given)
  if verdict == nil then
    if ok or message ~= "xpio: mal-formed address" then
      fail(string.format("address %s is mal-formed by the documents; bind gave %s, %s", render(addr), render(ok), render(message)))
    end
  else
    oracle_wellformed = oracle_wellformed + 1
    if not ok and message == "xpio: mal-formed address" then
      fail(string.format("address %s is well-formed by the documents (%s); bind says mal-formed", render(addr), verdict.family))
    elseif not ok and type(message) ~= "string" then
      fail(string.format("bind(%s) gave %s, %s", render(addr), render(ok), render(message)))
    elseif ok then
      oracle_bound = oracle_bound + 1
      local name = u:getsockname()
      if not addresses.matches_bound(verdict, name) then
        fail(string.format("bind(%s) succeeded, getsockname gave %s, which the documents do not allow", render(addr), render(name)))
      end
    end
  end
  u:close()
  if verdict and verdict.path then os.remove(verdict.path) end
end

--------------------------------------------------------------------------------
-- Object pools
--------------------------------------------------------------------------------

local sockets = {}        -- socket objects of every state (open, listening, connected, closed)
local queues = {}         -- task queues (open and closed)
local processes = {}      -- from the process kind's example constructor only
local spawned = {}        -- processes made by fuzzed spawn calls (`true`): waited, never signalled
local listen_ports = {}   -- ports of the fuzzer's own listeners
local guard_a, guard_b = assert(xpio.socketpair())   -- guard_b is always writable

local registered = setmetatable({}, { __mode = "k" })  -- task -> queue it is scheduled on (tasks the fuzzer made)
local queue_count = setmetatable({}, { __mode = "k" }) -- queue -> number of registered tasks on it

local function register(task, q)
  registered[task] = q
  queue_count[q] = (queue_count[q] or 0) + 1
end

local function unregister(task)
  local q = registered[task]
  if q then
    registered[task] = nil
    queue_count[q] = queue_count[q] - 1
  end
end

-- The queue was closed, dropped or collected: its tasks are no longer the
-- fuzzer's to track. After a close, the documents say they are unscheduled.
local function forget_queue(q, closed)
  for task, on in pairs(registered) do
    if on == q then
      registered[task] = nil
      if closed and (rawget(task, "_dequeue") ~= nil or rawget(task, "_dequeuedata") ~= nil) then
        fail("tqueue:close() left _dequeue/_dequeuedata set on a task that was waiting on it")
      end
    end
  end
  queue_count[q] = 0
end

local function add(list, value, cap, dispose)
  list[#list + 1] = value
  while #list > cap do
    local old = table.remove(list, 1)
    if dispose then dispose(old) end
  end
end

local function dispose_socket(s)
  -- half are closed, half left to the garbage collector
  if chance(0.5) then pcall(s.close, s) end
end

local function dispose_queue(q)
  -- its tasks are no longer the fuzzer's to check: closed now, or dropped
  -- with the queue (then collected with it)
  if chance(0.5) and not is_closed(q) then
    local ok, result = pcall(q.close, q)
    forget_queue(q, ok and result == true)
  else
    forget_queue(q)
  end
end

local function add_socket(s) if s then add(sockets, s, 48, dispose_socket) end end

local private_queue = xpio.tqueue()
local closed_queue = xpio.tqueue()
closed_queue:close()

local function connected_pair()
  local listener = xpio.socket("TCP")
  if not listener then return end
  assert(listener:bind("127.0.0.1:0"))
  assert(listener:listen())
  local port = tonumber(listener:getsockname():match(":(%d+)$"))
  add(listen_ports, port, 8)
  local client = xpio.socket("TCP")
  local ok, err = client:try_connect("127.0.0.1:" .. port)
  local server
  local deadline = xpio.gettime() + 1
  while xpio.gettime() < deadline do
    if not ok and err == "retry" then ok, err = client:try_connect("127.0.0.1:" .. port) end
    if not server then server = listener:try_accept() end
    if server and ok then break end
    private_queue:wait(0.001)
  end
  add_socket(listener)
  add_socket(client)
  add_socket(server)
end

local function refill_sockets()
  add_socket(xpio.socket("TCP"))
  local udp = xpio.socket("UDP")
  if udp then udp:bind("127.0.0.1:0") end
  add_socket(udp)
  connected_pair()
  local a, b = xpio.socketpair()
  if a then
    a:try_write(random_bytes(random(1, 100)))
    if chance(0.3) then a:shutdown("w") end
    add_socket(a)
    add_socket(b)
  end
  local r, w = xpio.pipe()
  if r then
    w:try_write("data")
    add_socket(r)
    add_socket(w)
  end
  local own = sockets[random(#sockets)]
  local ok, fd = pcall(own.fileno, own)
  if ok and math.type(fd) == "integer" then add_socket(xpio.fdopen(fd)) end
  local closed = xpio.socket(chance(0.5) and "TCP" or "UDP")
  if closed then
    closed:close()
    add_socket(closed)
  end
end

local function refill_queues()
  local q = xpio.tqueue()
  if q then add(queues, q, 6, dispose_queue) end
  if chance(0.2) then
    local c = xpio.tqueue()
    if c then
      c:close()
      add(queues, c, 6, dispose_queue)
    end
  end
end

local function finish_process(p, kill)
  if kill then pcall(p.kill, p) end
  local deadline = xpio.gettime() + 5
  while xpio.gettime() < deadline do
    local ok, status, err = pcall(p.try_wait, p)
    if not ok or status ~= nil or err ~= "retry" then return end   -- ended, or closed
    private_queue:wait(0.005)
  end
end

local function refill_processes()
  local p = kinds.process.example(xpio)
  if p then
    add(processes, p, 6, function(old)
      -- else: dropped while it may run, and reaped when it exits; a STOP the
      -- fuzz sent may have caught it before it exited, and a stopped child
      -- never exits, so it is continued first
      if chance(0.5) then finish_process(old, true) else pcall(old.kill, old, "CONT") end
    end)
  end
end

local function restore_nonblocking(s)
  if kind_of_value(s) == "socket" and not is_closed(s) then pcall(s.setsockopt, s, "O_NONBLOCK", true) end
end

local function restore_all_nonblocking()
  for _, s in ipairs(sockets) do restore_nonblocking(s) end
end

local function any_object()
  local r = random(3)
  if r == 1 and #sockets > 0 then return sockets[random(#sockets)] end
  if r == 2 and #queues > 0 then return queues[random(#queues)] end
  if #processes > 0 then return processes[random(#processes)] end
  return guard_a
end

local function any_value()
  local r = random(20)
  if r == 1 then return nil
  elseif r == 2 then return true
  elseif r == 3 then return false
  elseif r <= 6 then return pick(EDGE_INTEGERS)
  elseif r <= 8 then return pick(EDGE_FLOATS)
  elseif r <= 11 then return random_string()
  elseif r == 12 then return {}
  elseif r == 13 then return { 1, "two", {}, n = 3 }
  elseif r == 14 then return setmetatable({}, { __index = function() error("metamethod called") end,
                                                __len = function() error("metamethod called") end })
  elseif r == 15 then return pick({ function() end, function() error("boom") end, print })
  elseif r == 16 then return coroutine.create(function() end)
  elseif r == 17 then return io.stderr
  end
  return any_object()
end

--------------------------------------------------------------------------------
-- Typed argument generators
--------------------------------------------------------------------------------

local function pool_fds()
  local list = {}
  for _, s in ipairs(sockets) do
    local ok, fd = pcall(s.fileno, s)
    if ok and math.type(fd) == "integer" then list[#list + 1] = fd end
  end
  return list
end

local function random_task()
  local r = random(10)
  if r <= 6 then
    local open = {}
    for _, q in ipairs(queues) do if not is_closed(q) then open[#open + 1] = q end end
    if #open > 0 then return { _queue = open[random(#open)], payload = r } end
    local q = xpio.tqueue()
    add(queues, q, 6, dispose_queue)
    return { _queue = q }
  elseif r == 7 then
    return next(registered) or {}                           -- already scheduled: must be an error
  elseif r == 8 then return { _queue = queues[random(#queues)] }   -- maybe closed
  elseif r == 9 then return { _queue = any_value() }
  end
  return {}
end

-- Loopback only: a well-formed address is pointed at 127.0.0.0/8, and a
-- connect goes to one of the fuzzer's own listeners or to port 1.
local function allowed_port(port, for_connect)
  for _, p in ipairs(listen_ports) do if p == port then return port end end
  if for_connect then return port == 1 and 1 or ((#listen_ports > 0 and chance(0.7)) and pick(listen_ports) or 1) end
  return 0
end

local function safe_address(text, for_connect)
  if type(text) ~= "string" and type(text) ~= "number" then return text end
  local verdict = judge(tostring(text))
  if verdict == nil then return text end
  if verdict.family == "name" then
    -- never resolved beyond this machine
    return "localhost:" .. ((for_connect or not verdict.service:find("^%d+$")) and "1" or "0")
  elseif verdict.family == "inet6" then
    return "[::1]:" .. allowed_port(verdict.port, for_connect)
  elseif verdict.family == "unix" then
    if verdict.path then return "unix:" .. UNIX_DIR .. "/f" .. random(0, 1000) end
    return text
  end
  local host, port = verdict.host, allowed_port(verdict.port, for_connect)
  if host >> 24 ~= 127 then host = 0x7f000001 end
  if type(text) == "string" and chance(0.5) then
    return dotted(host) .. ":" .. port
  end
  return (host == 0x7f000001 and "127.0.0.1" or dotted(host)) .. (port ~= 0 and (":" .. port) or "")
end

--- A value of a spec enum: mostly one of its names (with its prefix, if it
--- has one, sometimes), else a near miss.
local function enum_value(e)
  local name = pick(e.cases)
  local r = random(10)
  if r <= 7 then return (e.prefix and chance(0.3)) and (e.prefix .. name) or name end
  return pick({ "", name:lower(), name .. "\0", name .. "X", (e.prefix or "") .. (e.prefix or ""), random_string() })
end

local function typed_value(fn, param)
  local name, ty = param.name, param.type
  local t = ty.t
  if t == "address" then
    local a = chance(0.2) and random_string() or (chance(0.5) and random_address() or mutate(random_address()))
    return safe_address(a, fn.name == "connect" or fn.name == "try_connect")
  elseif t == "string" or t == "cstring" or t == "name" then
    if name == "what" then return chance(0.8) and pick({ "r", "w", "rw", "wr", "", "x", "RW", "w\0r" }) or random_string()
    elseif name == "flags" then
      return chance(0.8) and pick({ "r", "w", "a", "r+", "w+", "a+", "rb", "wb+", "rw", "", "x" }) or random_string()
    elseif name == "data" then
      local r = random(6)
      if r == 1 then return "" elseif r == 2 then return LONG elseif r == 3 then return random(-5, 1000) end
      return random_bytes(random(1, 2000))
    end
    return random_string()
  elseif t == "enum" then
    return enum_value(cases.enums[ty.name])
  elseif t == "integer" or t == "size" then
    if name == "fd" then
      local r = random(4)
      local fds = pool_fds()
      if r <= 2 and #fds > 0 then return pick(fds) end
      if r == 3 then return random(15000, 19999) end                -- not open
      return pick({ -1, -2, math.maxinteger, math.mininteger, 2147483647, 2147483648, 4294967296 + 3 })
    elseif name == "size" then
      return pick({ 0, 1, 2, 100, 4096, 65536, 65537, 1 << 30, math.maxinteger, -1, math.mininteger, random(0, 70000) })
    end
    return chance(0.5) and pick(EDGE_INTEGERS) or random(-10, 1000)
  elseif t == "number" or t == "timeout" then
    if t == "timeout" then
      return pick({ 0, -1, 0.001, 0.01, SMALL_TIMEOUT, -1 / 0, 1 / 0, 0 / 0, math.maxinteger, math.mininteger,
                    0.5, 1e308, -1e308, "0", "0.001", "1e9" })
    end
    return chance(0.5) and pick(EDGE_FLOATS) or pick(EDGE_INTEGERS)
  elseif t == "boolean" then return chance(0.5)
  elseif t == "task" then return random_task()
  elseif t == "table" then return chance(0.5) and {} or { random_string(), random_string() }
  elseif t == "union" then
    if name == "signal" then
      return pick({ 9, 15, 1, 0, -1, 64, 65, 10, 19, 18, "TERM", "SIGTERM", "KILL", "USR1", "STOP", "CONT",
                    "SIG", "", "SIGKILL\0", "bogus", 2.5, 1 / 0, 0 / 0, math.maxinteger, true, false, {} })
    end
    return typed_value(fn, { name = name, type = pick(ty.of) })
  elseif t == "valueOf" then
    return pick({ true, false, 0, 1, 4096, 1 << 20, -1, math.maxinteger, math.mininteger, 0.5, 0 / 0, "1", "yes", {} })
  elseif t == "object" then
    return any_object()
  end
  return any_value()
end

--------------------------------------------------------------------------------
-- spawn sandbox: only `true` or a program that does not exist ever runs.
--------------------------------------------------------------------------------

local NO_PROGRAM = "xpio-fuzz-no-such-program"
local SAFE_PROGRAMS = { "true", "/bin/true", NO_PROGRAM, "/nonexistent/xpio-fuzz", "./" .. NO_PROGRAM }

local function random_env()
  if chance(0.5) then return chance(0.5) and xpio.env or {} end
  local r = random(9)
  if r == 1 then return xpio.env
  elseif r == 2 then return { A = "1", B = "" }
  elseif r == 3 then return { ["A=B"] = "x" }
  elseif r == 4 then return { [""] = "x" }
  elseif r == 5 then return { A = "a\0b" }
  elseif r == 6 then return { ["A\0"] = "x" }
  elseif r == 7 then return { [1] = "x", A = 2 }
  elseif r == 8 then return { A = {} }
  end
  return {}
end

local function random_files()
  if chance(0.4) then return nil end
  local r = random(12)
  local function sock() return sockets[random(#sockets)] end
  if r == 1 then return {}
  elseif r == 2 then return { [0] = 0, [1] = 2, [2] = 2 }
  elseif r == 3 then return { [1] = sock() }
  elseif r == 4 then return { [0] = sock(), [1] = sock(), [2] = sock() }
  elseif r == 5 then return { [-1] = 0 }
  elseif r == 6 then return { [1.5] = 0 }
  elseif r == 7 then return { [1 << 40] = 0 }
  elseif r == 8 then return { [random(3, 2000)] = 2, [1] = 2 }
  elseif r == 9 then return { [1] = random(15000, 19999) }          -- not open
  elseif r == 10 then return { [1] = pick({ -1, math.maxinteger, 2 ^ 31, "1", queues[1] or {}, {}, true }) }
  elseif r == 11 then return { x = 1 }
  end
  return { [1] = 2, [2] = 1 }
end

local function random_attrs()
  local attrs = {}
  if chance(0.4) then return attrs end
  if chance(0.3) then attrs.exe = pick({ "true", NO_PROGRAM, "", "a\0b", 7, {} }) end
  if chance(0.3) then attrs.cwd = pick({ "/", "/nonexistent-xpio-fuzz", "", "/tmp\0x", ".", 3 }) end
  if chance(0.2) then attrs.pgroup = pick({ true, false, 0, "x", processes[1] or true, guard_a }) end
  if chance(0.2) then attrs.setsid = pick({ true, false, 1, "yes" }) end
  return attrs
end

local function safe_program(v)
  if type(v) == "string" or type(v) == "number" then return pick(SAFE_PROGRAMS) end
  return v
end

local function spawn_args(args, n)
  -- args[1], the argv table: argv[1] names the program, so it is `true` or a
  -- program that does not exist (read raw, as XPIO reads it)
  local argv = args[1]
  if type(argv) ~= "table" or chance(0.7) then
    if chance(0.9) then
      argv = { pick(SAFE_PROGRAMS) }
      for i = 2, random(1, 4) do
        argv[i] = chance(0.6) and ("arg" .. i) or chance(0.7) and random_string() or any_value()
      end
    else
      argv = pick({ {}, "true", 1, nil })
    end
  end
  if type(argv) == "table" then rawset(argv, 1, safe_program(rawget(argv, 1))) end
  args[1] = argv
  if n >= 2 and chance(0.8) then args[2] = random_env() end
  if n >= 3 and chance(0.8) then args[3] = random_files() end
  if n >= 4 then
    local attrs = args[4]
    if type(attrs) ~= "table" or chance(0.7) then attrs = random_attrs() end
    if type(attrs) == "table" then rawset(attrs, "exe", safe_program(rawget(attrs, "exe"))) end
    args[4] = attrs
  end
  return args
end

--------------------------------------------------------------------------------
-- Checking results
--------------------------------------------------------------------------------

local function check_message(what, message)
  if type(message) ~= "string" then
    fail(string.format("%s is a %s (%s), not a string", what, type(message), render(message)))
  elseif message:find("internal", 1, true) then
    fail(string.format("%s mentions \"internal\": %s", what, render(message)))
  elseif message == "" then
    fail(what .. " is empty")
  end
end

local function check_results(receiver, fn, pack, closed_before)
  if not pack[1] then
    stats.raised = stats.raised + 1
    check_message("the error", pack[2])
    return
  end
  local first, second = pack[2], pack[3]
  if first == nil and pack.n >= 3 and second ~= nil then
    stats.failed = stats.failed + 1
    check_message("the message", second)
    -- A closed socket never reaches the system (its number may be reused):
    -- "xpio: socket is closed", or another error XPIO detects itself in the
    -- arguments (a mal-formed address), never a strerror() text.
    if type(second) == "string" and fn.owner == "socket" and closed_before and kind_of_value(receiver) == "socket"
       and second:sub(1, 6) ~= "xpio: " then
      fail("a closed socket answered " .. render(second) .. " instead of \"xpio: socket is closed\"")
    end
  end
end

-- Each function's result shapes come from its return convention in the
-- spec: `fn.shapes` in the cases file, each a list of types by position.
-- A failure is `nil, message`.
local function is_failure(shape) return #shape == 2 and shape[1] == "nil" and shape[2] == "string" end

local function has_type(v, t)
  if t:find("|", 1, true) then
    for alternative in t:gmatch("[^|]+") do if has_type(v, alternative) then return true end end
    return false
  end
  if t == "any" then return true
  elseif t == "nil" then return v == nil
  elseif t == "true" then return v == true
  elseif t == "integer" then return math.type(v) == "integer"
  elseif t == "task" or t == "task[]" then return type(v) == "table"
  elseif kinds[t] then return kind_of_value(v) == t
  end
  return type(v) == t
end

-- `pack` (pcall's results) holds the values of one shape (a trailing nil
-- may be left out, as Lua cannot tell the two apart).
local function matches(pack, shape)
  if pack.n - 1 > #shape then return false end
  for i, t in ipairs(shape) do
    if not has_type(pack[i + 1], t) then return false end
  end
  return true
end

-- What the documents say beyond the types, for a call that succeeded.
-- REFINED: "owner.name" -> { what the documents say, check(first value,
-- arguments after self, second value) }.
local last_time = -math.huge
local function address(v)
  v = tostring(v)
  if v:find("^unix:") then return true end
  local six, six_port = v:match("^%[([%x:%.%%%w]+)%]:(%d+)$")
  if six then return tonumber(six_port) <= 65535 end
  local a, b, c, d, port = v:match("^(%d+)%.(%d+)%.(%d+)%.(%d+):(%d+)$")
  if not a then return false end
  for _, octet in ipairs({ a, b, c, d }) do if tonumber(octet) > 255 then return false end end
  return tonumber(port) <= 65535
end
local function read_ok(v, args)
  local size = math.tointeger(tonumber(args[1]))
  if size == 0 then return v == "" end
  return not size or (#v >= 1 and #v <= size and #v <= 65536)
end
local function count_ok(v, args)
  local data = args[1]
  local length = type(data) == "string" and #data or type(data) == "number" and #tostring(data) or math.huge
  return v >= 0 and v <= length
end
local function status_ok(how, _, code)
  return (how == "exit" and code >= 0 and code <= 255) or (how == "signal" and code >= 1 and code <= 64)
end
local REFINED = {
  ["xpio.gettime"] = { "a float that never goes backwards", function(v)
    local ok = math.type(v) == "float" and v >= last_time
    last_time = v
    return ok
  end },
  ["xpio.getCurrentTask"] = { "nil: no current task is set between calls", function(v) return v == nil end },
  ["socket.read"] = { "1 to size bytes (at most 64 KiB), \"\" for size 0", read_ok },
  ["socket.try_read"] = { "1 to size bytes (at most 64 KiB), \"\" for size 0", read_ok },
  ["socket.write"] = { "a count of bytes written, 0 to #data", count_ok },
  ["socket.try_write"] = { "a count of bytes written, 0 to #data", count_ok },
  ["socket.getsockname"] = { "an address \"a.b.c.d:port\", \"[v6]:port\" or \"unix:...\"", address },
  ["socket.getpeername"] = { "an address \"a.b.c.d:port\", \"[v6]:port\" or \"unix:...\"", address },
  ["socket.getsockopt"] = { "a boolean or a non-negative integer", function(v)
    return type(v) == "boolean" or (math.type(v) == "integer" and v >= 0)
  end },
  ["socket.fileno"] = { "a descriptor number", function(v) return v >= 0 end },
  ["tqueue.fileno"] = { "a descriptor number", function(v) return v >= 0 end },
  ["process.pid"] = { "a process id", function(v) return v >= 1 end },
  ["process.wait"] = { "\"exit\", 0..255 or \"signal\", 1..64", status_ok },
  ["process.try_wait"] = { "\"exit\", 0..255 or \"signal\", 1..64", status_ok },
}

local function check_shape(fn, args, pack)
  local key = (fn.owner or "xpio") .. "." .. fn.name
  local list = fn.shapes
  local found
  for _, shape in ipairs(list) do
    if matches(pack, shape) then found = shape break end
  end
  if not found then
    local expected = {}
    for i, shape in ipairs(list) do expected[i] = table.concat(shape, ", ") end
    fail(string.format("%s returned (%s); the spec allows (%s)", key, render_args({ table.unpack(pack, 2, pack.n) }, pack.n - 1),
      table.concat(expected, ") or (")))
  elseif is_failure(found) and fn.blocking and pack[3] == "retry" then
    fail(key .. ", a blocking function, returned nil, \"retry\" instead of waiting")
  elseif not is_failure(found) and pack[2] ~= nil and REFINED[key] and not REFINED[key][2](pack[2], args, pack[3]) then
    fail(string.format("%s returned %s; the documents say %s", key, render(pack[2]), REFINED[key][1]))
  end
end

-- After tqueue:wait returned `ready`: each task once, each one the fuzzer
-- scheduled on this queue, each unscheduled.
local function check_ready(q, ready)
  -- a closed queue answers nil, message (the driver may not have seen it
  -- close: tqueue.close(q) drawn without self)
  if is_closed(q) then return end
  if ready == nil then
    if (queue_count[q] or 0) > 0 then
      fail("tqueue:wait returned nil (nothing to wait on) while tasks were scheduled on the queue")
    end
    return
  end
  if type(ready) ~= "table" then
    if type(ready) ~= "nil" then fail("tqueue:wait returned a " .. type(ready)) end
    return
  end
  local seen = {}
  for i, task in ipairs(ready) do
    if type(task) ~= "table" then fail("tqueue:wait returned a " .. type(task) .. " at index " .. i) return end
    if seen[task] then fail("tqueue:wait returned the same task twice") end
    seen[task] = true
    if rawget(task, "_dequeue") ~= nil or rawget(task, "_dequeuedata") ~= nil then
      fail("a task returned by tqueue:wait still has _dequeue/_dequeuedata")
    end
    if registered[task] ~= q then
      fail("tqueue:wait returned a task that was not scheduled on this queue (returned twice, or never scheduled)")
    end
    unregister(task)
    stats.returned = stats.returned + 1
  end
end

local function check_empty(q)
  if kind_of_value(q) ~= "tqueue" or is_closed(q) then return end
  local expected = (queue_count[q] or 0) == 0
  local ok, empty = pcall(q.isEmpty, q)
  if not ok then fail("tqueue:isEmpty raised: " .. tostring(empty)) return end
  if (queue_count[q] or 0) > 0 and empty then
    fail(string.format("tqueue:isEmpty() is true with %d task(s) scheduled", queue_count[q]))
  elseif expected and not empty then
    -- tasks of a queue can only come from the fuzzer's when_ calls and guards
    fail("tqueue:isEmpty() is false with no task scheduled")
  end
end

--------------------------------------------------------------------------------
-- Making one call
--------------------------------------------------------------------------------

local function timed_pcall(f, ...)
  local t0 = xpio.gettime()
  local pack = table.pack(pcall(f, ...))
  local took = xpio.gettime() - t0
  if took > CALL_BUDGET then fail(string.format("the call took %.2f s (budget %.1f s)", took, CALL_BUDGET)) end
  return pack
end

-- A blocking function, in a coroutine with a current task on a fresh queue.
local function call_in_coroutine(f, args, n)
  local q = xpio.tqueue()
  local task = { _queue = q }
  local weird = chance(0.1)
  if weird then task._queue = pick({ "not a queue", guard_a, closed_queue, 1 }) end
  local co = coroutine.create(f)
  local t0 = xpio.gettime()
  local deadline = t0 + 0.05 + random() * 0.1
  xpio.setCurrentTask(chance(0.05) and nil or task)
  local pack = table.pack(coroutine.resume(co, table.unpack(args, 1, n)))
  xpio.setCurrentTask(nil)
  local rounds = 0
  if coroutine.status(co) == "suspended" then stats.yielded = stats.yielded + 1 end
  while coroutine.status(co) == "suspended" do
    rounds = rounds + 1
    if type(rawget(task, "_dequeue")) ~= "function" then
      fail("a blocking call yielded without scheduling the current task")
      break
    end
    if xpio.gettime() > deadline or rounds > 50 then break end
    local early = chance(0.1)      -- resumed before its task is returned: it must reschedule cleanly
    local returned = false
    if not early then
      local ready = q:wait(0.01)
      if type(ready) ~= "table" then fail("tqueue:wait(0.01) returned " .. render(ready)) break end
      for _, t in ipairs(ready) do
        if t ~= task then fail("a fresh queue returned a task it was never given") end
        if rawget(t, "_dequeue") ~= nil then fail("a returned task still has _dequeue") end
        returned = true
      end
    end
    if returned or early then
      xpio.setCurrentTask(task)
      pack = table.pack(coroutine.resume(co))
      xpio.setCurrentTask(nil)
    end
  end
  local took = xpio.gettime() - t0
  if took > CALL_BUDGET then fail(string.format("the blocking call took %.2f s (budget %.1f s)", took, CALL_BUDGET)) end
  if coroutine.status(co) == "suspended" then
    -- abandoned while it waits: dequeue it (or drop it with the queue)
    stats.abandoned = stats.abandoned + 1
    if chance(0.5) then
      local dq = rawget(task, "_dequeue")
      local ok, err = pcall(dq, task)
      if not ok then fail("task:_dequeue() raised: " .. tostring(err)) end
      if rawget(task, "_dequeue") ~= nil then fail("task:_dequeue() left _dequeue set") end
      if not q:isEmpty() then fail("the queue is not empty after its only task was dequeued") end
      local ready = q:wait(0)
      if type(ready) ~= "table" or #ready ~= 0 then fail("a dequeued task was returned by tqueue:wait") end
    end
    q:close()
    return nil
  end
  q:close()
  return pack
end

local spawn_times = {}
local function spawn_allowed()
  local now = xpio.gettime()
  while spawn_times[1] and spawn_times[1] < now - 1 do table.remove(spawn_times, 1) end
  if #spawn_times >= 25 then return false end
  spawn_times[#spawn_times + 1] = now
  return true
end

local function needs_guard(q, args, n)
  local timeout = args[1]
  if n < 1 or timeout == nil or timeout == false then
    local ok, empty = pcall(q.isEmpty, q)
    return not (ok and empty)
  end
  if type(timeout) == "string" then timeout = tonumber(timeout) end
  if type(timeout) ~= "number" then return false end      -- an argument error
  return timeout ~= timeout or timeout > SMALL_TIMEOUT    -- NaN too
end

local function fuzz_call(fn)
  local params = fn.params
  local n = #params
  local r = random(10)
  if r == 1 and n > 0 then n = random(0, n - 1)                 -- too few
  elseif r == 2 then n = n + random(1, 3) end                   -- too many
  local args = {}
  for i = 1, n do
    local p = params[i]
    if p and chance(0.75) then args[i] = typed_value(fn, p) else args[i] = any_value() end
    if p and p.optional and chance(0.1) then args[i] = nil end
  end

  local f
  local receiver, self_given = nil, true
  if fn.owner == nil then
    f = (fn.module and require(fn.module) or xpio)[fn.name]
    if fn.name == "spawn" then
      if not spawn_allowed() then return end
      if n >= 1 then args = spawn_args(args, n) end
    elseif fn.name:find("resolve$") then
      -- names never leave the machine: any host name becomes localhost
      local at = fn.name == "when_resolve" and 2 or 1
      local host = args[at]
      local verdict = type(host) == "string" and judge(host .. ":1")
      if verdict and verdict.family == "name" and host ~= "localhost" then args[at] = "localhost" end
    elseif fn.name == "fdopen" and n >= 1 then
      local v = args[1]
      -- "own" takes the number itself, as adopt does: never one that is open
      if n >= 2 and args[2] == "own" then args[2] = "dup" end
      -- only descriptors the fuzzer owns, or numbers that are not open
      if type(v) == "string" then v = tonumber(v) end
      if type(v) == "number" and v == v and v >= 0 and v < 15000 then
        local own = false
        for _, fd in ipairs(pool_fds()) do if fd == v then own = true end end
        if not own then args[1] = random(15000, 19999) end
      end
    elseif fn.name == "open" and n >= 1 then
      -- files are made and written in the fuzzer's own directory only
      if type(args[1]) == "string" or type(args[1]) == "number" then
        args[1] = pick({ UNIX_DIR .. "/file" .. random(0, 3), UNIX_DIR, UNIX_DIR .. "/no/such/file", "/dev/null" })
      end
    elseif fn.name == "adopt" and n >= 1 then
      local v = args[1]
      if type(v) == "string" then v = tonumber(v) end
      if type(v) == "number" and v == v and v >= 0 then args[1] = random(15000, 19999) end
    end
  else
    f = methods[fn.owner][fn.name]
    local rr = random(20)
    if rr <= 15 then
      local pool = ({ socket = sockets, tqueue = queues, process = processes })[fn.owner] or { kinds[fn.owner].first_example }
      receiver = #pool > 0 and pool[random(#pool)] or any_object()
    elseif rr <= 17 then receiver = any_object()                 -- maybe the wrong kind
    elseif rr <= 19 then receiver = any_value()
    else
      self_given = false
      -- tqueue.wait(x) with a queue drawn as x is q:wait() without its guard
      if fn.owner == "tqueue" and fn.name == "wait" and kind_of_value(args[1]) == "tqueue" then args[1] = 0 end
    end
    if self_given then
      table.insert(args, 1, receiver)
      n = n + 1
    end
  end
  if not f then
    set_call(string.format("%s%s", fn.owner and (fn.owner .. ":") or "xpio.", fn.name))
    fail(string.format("%s declares %s%s, the module has no such function (the module and the cases "
      .. "file must come from the same spec: is one of them stale?)", CASES_PATH, fn.owner and (fn.owner .. ":") or "xpio.", fn.name))
    return
  end

  local self_kind = self_given and kind_of_value(receiver)
  -- Sandboxing that depends on the receiver.
  if fn.owner == "socket" and fn.name == "listen" and self_kind == "socket" and not is_closed(receiver) then
    -- listen() on an unbound TCP socket would bind it to 0.0.0.0: loopback first
    local ok, name = pcall(receiver.getsockname, receiver)
    if ok and name == "0.0.0.0:0" then pcall(receiver.bind, receiver, "127.0.0.1:0") end
  end
  local guard_task
  if fn.owner == "tqueue" and fn.name == "wait" and self_kind == "tqueue" and not is_closed(receiver)
     and needs_guard(receiver, { table.unpack(args, 2, n) }, n - 1) then
    guard_task = { _queue = receiver, guard = true }
    if guard_b:when_write(guard_task) then register(guard_task, receiver) end
  end
  -- a when_ function's task: after self for a method, first for a module function
  local task_arg = fn.name:find("^when_") and (fn.owner and (self_given and args[2] or nil) or args[1]) or nil
  local was_scheduled = type(task_arg) == "table" and rawget(task_arg, "_dequeue") ~= nil
  local old_dequeue = was_scheduled and rawget(task_arg, "_dequeue")
  local old_data = was_scheduled and rawget(task_arg, "_dequeuedata")

  local closed_before = self_given and is_closed(receiver)
  set_call(string.format("%s%s(%s)", fn.owner and (fn.owner .. "." .. fn.name) or ("xpio." .. fn.name),
    self_given and "" or " [no self]", render_args(args, n)))
  calls = calls + 1

  local pack
  if fn.blocking and chance(0.7) then
    pack = call_in_coroutine(f, args, n)
    if not pack then return end                                   -- abandoned while waiting
  else
    if fn.blocking and chance(0.3) then xpio.setCurrentTask({ _queue = xpio.tqueue() }) end
    pack = timed_pcall(f, table.unpack(args, 1, n))
    xpio.setCurrentTask(nil)
  end
  check_results(receiver, fn, pack, closed_before)
  if pack[1] and (not fn.owner or self_kind == fn.owner) then
    local rest = fn.owner and { table.unpack(args, 2, n) } or { table.unpack(args, 1, n) }
    check_shape(fn, rest, pack)
  end

  -- What the call changed.
  if fn.name == "setCurrentTask" then xpio.setCurrentTask(nil) end
  if fn.owner == "socket" and fn.name == "setsockopt" then restore_nonblocking(receiver) end
  if fn.owner == "socket" and fn.name == "detach" and pack[1] and math.type(pack[2]) == "integer" then
    local taken = xpio.adopt(pack[2])
    if taken then add_socket(taken) end
  end
  if fn.name == "spawn" then
    restore_all_nonblocking()
    local p = pack[1] and pack[2]
    if kind_of_value(p) == "process" then stats.spawned = stats.spawned + 1 end
    if kind_of_value(p) == "process" then add(spawned, p, 30, function(old) finish_process(old, false) end) end
  end
  if pack[1] then
    -- objects made by the call join the pools
    for i = 2, pack.n do
      local v = pack[i]
      if kind_of_value(v) == "socket" then add_socket(v)
      elseif kind_of_value(v) == "tqueue" then add(queues, v, 6, dispose_queue) end
    end
  end
  if task_arg ~= nil then
    -- Scheduling a task that is already scheduled is an error (or, on a
    -- closed socket, nil, message); it never schedules it a second time.
    if was_scheduled and pack[1] and pack[2] ~= nil then
      fail("scheduling a task that is already scheduled did not fail")
    end
    if was_scheduled and (rawget(task_arg, "_dequeue") ~= old_dequeue or rawget(task_arg, "_dequeuedata") ~= old_data) then
      fail("a failed when_ call changed the _dequeue fields of a scheduled task")
    end
    if not was_scheduled and pack[1] and pack[2] == true then
      if type(rawget(task_arg, "_dequeue")) ~= "function" then
        fail("a when_ function returned true but the task has no _dequeue")
      end
      local q = rawget(task_arg, "_queue")
      register(task_arg, q)
      stats.scheduled = stats.scheduled + 1
      check_empty(q)
    end
  end
  if fn.owner == "tqueue" and self_kind == "tqueue" then
    if fn.name == "wait" and pack[1] then check_ready(receiver, pack[2]) end
    if is_closed(receiver) then forget_queue(receiver, fn.name == "close" and pack[1] and pack[2] == true) end
    check_empty(receiver)
    if guard_task and rawget(guard_task, "_dequeue") then
      guard_task:_dequeue()
      unregister(guard_task)
    end
  end
end

-- Extra actions: dequeue a scheduled task (sometimes through another task's
-- _dequeue), garbage collection, dropping objects.
local function extra_action()
  local r = random(6)
  if r <= 2 then
    local list = {}
    for task in pairs(registered) do list[#list + 1] = task end
    if #list == 0 then return end
    table.sort(list, function(a, b) return tostring(a) < tostring(b) end)
    local task = list[random(#list)]
    local other = list[random(#list)]
    local arg = chance(0.7) and task or pick({ other, {}, nil, 1, guard_a, rawget(task, "_dequeuedata") })
    local dq = rawget(task, "_dequeue")
    set_call("task._dequeue(" .. render(arg) .. ")")
    calls = calls + 1
    -- an integer is some task's _dequeuedata: the task it names on dq's queue
    local target = arg
    if math.type(arg) == "integer" then
      for t, q in pairs(registered) do
        if q == registered[task] and rawget(t, "_dequeuedata") == arg then target = t end
      end
    end
    local before = type(target) == "table" and registered[target] or nil
    local pack = timed_pcall(dq, arg)
    if not pack[1] then check_message("the error", pack[2]) end
    if type(arg) ~= "table" and math.type(arg) ~= "integer" and pack[1] then
      fail("task._dequeue(" .. render(arg) .. ") did not raise")
    end
    arg = target
    if before then
      if rawget(arg, "_dequeue") == nil then
        -- unscheduled: only by its own queue's _dequeue
        if before ~= registered[task] then
          fail("a queue's _dequeue unscheduled a task of another queue")
        end
        unregister(arg)
        stats.dequeued = stats.dequeued + 1
        check_empty(before)
      elseif arg == task then
        fail("task:_dequeue() left the task scheduled")
      end
    end
  elseif r == 3 then
    set_call("collectgarbage()")
    collectgarbage()
  elseif r == 4 and #sockets > 0 then
    table.remove(sockets, random(#sockets))              -- dropped: closed by collection
  elseif r == 5 and #queues > 1 then
    local q = table.remove(queues, random(#queues))       -- dropped with its tasks
    forget_queue(q)
  else
    -- close a socket other tasks may wait on; they must be returned
    if #sockets > 0 then
      local s = sockets[random(#sockets)]
      set_call("socket.close(" .. render(s) .. ") [extra]")
      calls = calls + 1
      check_results(s, { owner = "socket", name = "close" }, timed_pcall(s.close, s), is_closed(s))
    end
  end
end

--------------------------------------------------------------------------------
-- Main loop
--------------------------------------------------------------------------------

set_call("(filling the object pools: xpio.socket, socketpair, pipe, fdopen, tqueue, spawn)")
refill_sockets()
refill_queues()
refill_processes()

local functions = cases.functions
local t_start = xpio.gettime()
local t_end = t_start + SECONDS
local iteration = 0
local by_function = {}

while true do
  iteration = iteration + 1
  if iteration % 64 == 0 then
    if xpio.gettime() >= t_end then break end
    set_call("(refilling the object pools: xpio.socket, socketpair, pipe, fdopen, tqueue, spawn)")
    if #sockets < 40 or chance(0.2) then refill_sockets() end
    if #queues < 4 or chance(0.1) then refill_queues() end
    if #processes < 3 or chance(0.05) then refill_processes() end
  end
  local r = random(100)
  if r <= 10 then
    oracle_check()
  elseif r <= 14 then
    extra_action()
  else
    local fn = functions[random(#functions)]
    local key = (fn.owner or "xpio") .. "." .. fn.name
    by_function[key] = (by_function[key] or 0) + 1
    fuzz_call(fn)
  end
end

--------------------------------------------------------------------------------
-- Cleanup and leak checks
--------------------------------------------------------------------------------

set_call("(cleanup)")
local missed = {}
for _, fn in ipairs(functions) do
  local key = (fn.owner or "xpio") .. "." .. fn.name
  if not by_function[key] then missed[#missed + 1] = key end
end
if #missed > 0 and SECONDS >= 2 then fail("never called: " .. table.concat(missed, ", ")) end

for _, p in ipairs(processes) do finish_process(p, true) end
for _, p in ipairs(spawned) do finish_process(p, false) end
for _, kind in pairs(kinds) do
  local v = kind.first_example
  if kind.name == "process" then finish_process(v, true)
  elseif not is_closed(v) then pcall(v.close, v) end
end
for _, s in ipairs(sockets) do if not is_closed(s) then pcall(s.close, s) end end
for _, q in ipairs(queues) do if not is_closed(q) then pcall(q.close, q) end end
guard_a:close()
guard_b:close()
private_queue:close()
processes, spawned, sockets, queues = {}, {}, {}, {}
for k in pairs(kinds) do kinds[k].first_example = nil end
collectgarbage()
collectgarbage()

-- Dropped process objects are reaped when their child exits: give them a moment.
local deadline = xpio.gettime() + 5
local leftover_children, leftover_fds
repeat
  collectgarbage()
  -- A child the fuzz stopped (STOP is among the signals it sends) and then
  -- closed never exits, and its closed object can no longer continue it:
  -- continue it here, by pid, so that the reaper can end it.
  for _, pid in ipairs(children()) do
    local st = helper.proc_stat(pid)
    if st and (st.state == "T" or st.state == "t") then os.execute("kill -CONT " .. pid) end
  end
  leftover_children = #children() - baseline_children
  leftover_fds = #fd_list() - #baseline_fds
  if leftover_children <= 0 and leftover_fds <= 0 then break end
  local q = xpio.tqueue()
  q:wait(0.05)
  q:close()
until xpio.gettime() > deadline
if leftover_children > 0 then
  fail(string.format("%d child process(es) left at exit: %s", leftover_children, table.concat(children(), " ")))
end
if leftover_fds > 0 then
  fail(string.format("%d descriptor(s) left open at exit: before %s, after %s", leftover_fds,
    table.concat(baseline_fds, " "), table.concat(fd_list(), " ")))
end

os.execute("rm -rf " .. shell_quote(UNIX_DIR))
record:close()
print(string.format("fuzz: %d functions, %d oracle addresses (%d well-formed, %d bound), %.1f s",
  #functions, oracle_checks, oracle_wellformed, oracle_bound, xpio.gettime() - t_start))
print(string.format("fuzz: %d Lua errors, %d nil+message; %d blocking calls yielded (%d abandoned while waiting); "
  .. "%d tasks scheduled, %d returned by wait, %d dequeued; %d children started",
  stats.raised, stats.failed, stats.yielded, stats.abandoned, stats.scheduled, stats.returned, stats.dequeued, stats.spawned))
print(string.format("fuzz: %d calls, %d failure%s", calls, failures, failures == 1 and "" or "s"))
os.exit(failures == 0 and 0 or WORKER_FAILED)
