-- Load and soak tests (issue 8), bounded to about a minute in all:
--
-- 1. an echo server under xpio.sched with 500 concurrent TCP clients, each
--    sending XPIO_SOAK_MESSAGES (default 200) messages of random sizes up to
--    64 KiB; every byte must come back in order;
-- 2. 100 children (`cat`) spawned and waited concurrently, each echoing
--    1 MiB through pipes;
-- 3. 10 000 mixed operations (open, connect, read, write, close, spawn, wait,
--    drop, collect), after which descriptors, children and memory must be
--    back near their starting levels (bounds below).
local xpio = require "xpio"
local helper = require "helper"

local function env_number(name, default)
  return tonumber(os.getenv(name) or "") or default
end

-- XPIO_SOAK_SCALE shrinks every count (check-memory runs 0.05 under valgrind).
local SCALE = env_number("XPIO_SOAK_SCALE", 1)
local function scaled(n) return math.max(1, math.floor(n * SCALE)) end
local CLIENTS = env_number("XPIO_SOAK_CLIENTS", scaled(500))
local MESSAGES = env_number("XPIO_SOAK_MESSAGES", scaled(200))
local MAX_MESSAGE = 64 * 1024
local CHILDREN = scaled(100)
local CHILD_BYTES = 1024 * 1024
local MIXED_OPS = scaled(10000)
-- Socket buffers of the echo test. Left to autotuning, 1000 loopback sockets
-- grow past the kernel's tcp_mem pressure threshold (about 1.1 GiB here):
-- the kernel then prunes, drops and retransmits, and the run is timed by
-- its retransmission timers instead of by XPIO.
local SOCKET_BUFFER = 256 * 1024

-- Bounds for the mixed-operation soak, measured after a warm-up of the same
-- operations (allocator arenas, buffers and tables have reached their size):
local LUA_MEMORY_SLACK_KB = 256         -- collectgarbage("count") after a full collection
local RSS_SLACK_KB = 2 * 1024           -- VmRSS of the child interpreter that runs them
-- descriptors and children: back to exactly the starting count

local fresh_sched = helper.fresh_sched

-- Random bytes, and a generator per stream that both ends can replay.
local POOL_BYTES = 2 * MAX_MESSAGE
local POOL
do
  local parts = {}
  local x = 0x9E3779B97F4A7C15
  for i = 1, POOL_BYTES // 8 do
    x = x ~ (x << 13); x = x ~ (x >> 7); x = x ~ (x << 17)
    parts[i] = string.pack("<i8", x)
  end
  POOL = table.concat(parts)
end

local function stream_random(seed)
  local x = seed * 2654435761 + 1
  return function(n)
    x = x * 6364136223846793005 + 1442695040888963407
    return (x >> 33) % n
  end
end

-- The mixed-operation soak, run by a child interpreter (see the test below).
local MIXED_SCRIPT = [==[
local xpio = require "xpio"
local sched = require "xpio.sched"
sched.onerror(sched.raise) -- a failing assertion in a task fails the test
local OPS = tonumber(os.getenv("XPIO_SOAK_OPS"))
local helper = require "helper"
local open_fds, children_count, rss_kb = helper.open_fds, helper.children_count, helper.rss_kb
local DATA = string.rep("0123456789abcdef", 4096)

local listener = assert(xpio.socket("TCP"))
assert(listener:bind("127.0.0.1:0"))
assert(listener:listen(512))
local addr = listener:getsockname()
local counts, failures = {}, {}
local seed = 12345
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end

-- One round: `ops` operations by 4 worker tasks sharing pools of sockets and
-- processes; then everything is closed, waited or dropped.
local function round(ops)
  local sockets, processes = {}, {}
  local remaining = ops
  local workers_done = 0
  local stop = false
  local function keep(list, value, cap)
    list[#list + 1] = value
    if #list > cap then table.remove(list, 1) end           -- dropped, not closed
  end
  local function take(list)
    if #list == 0 then return nil end
    return table.remove(list, rnd(#list))
  end
  local function count(name) counts[name] = (counts[name] or 0) + 1 end
  local acceptor = sched.spawn(function()
    while not stop do
      local s = listener:try_accept()
      if s then keep(sockets, s, 64) else sched.sleep(0.002) end
    end
  end)
  local function worker()
    while remaining > 0 do
      remaining = remaining - 1
      local op = rnd(100)
      if op <= 15 then                                  -- open
        count("open")
        local kind = rnd(4)
        if kind == 1 then
          local a, b = assert(xpio.socketpair())
          keep(sockets, a, 64) keep(sockets, b, 64)
        elseif kind == 2 then
          local r, w = assert(xpio.pipe())
          keep(sockets, r, 64) keep(sockets, w, 64)
        else
          keep(sockets, assert(xpio.socket(kind == 3 and "TCP" or "UDP")), 64)
        end
      elseif op <= 25 then                              -- connect
        count("connect")
        local s = assert(xpio.socket("TCP"))
        local ok, err = s:connect(addr)
        if not ok then failures[#failures + 1] = "connect: " .. tostring(err) end
        keep(sockets, s, 64)
      elseif op <= 40 then                              -- write
        count("write")
        local s = sockets[rnd(math.max(#sockets, 1))]
        if s then s:try_write(DATA:sub(1, rnd(4096))) end
      elseif op <= 55 then                              -- read
        count("read")
        local s = sockets[rnd(math.max(#sockets, 1))]
        if s then s:try_read(rnd(65536)) end
      elseif op <= 70 then                              -- close
        count("close")
        local s = take(sockets)
        if s then s:close() end
      elseif op <= 76 then                              -- spawn
        count("spawn")
        keep(processes, assert(xpio.spawn({ "sh", "-c", "exit " .. rnd(3) - 1 }, xpio.env)), 16)
      elseif op <= 84 then                              -- wait
        count("wait")
        local p = take(processes)
        if p then
          local how, code = p:wait()
          if how ~= "exit" or code > 2 then failures[#failures + 1] = "wait: " .. tostring(how) .. " " .. tostring(code) end
        end
      elseif op <= 94 then                              -- drop
        count("drop")
        if rnd(2) == 1 then take(sockets) else take(processes) end
      else                                              -- collect
        count("collect")
        collectgarbage()
      end
      if rnd(8) == 1 then sched.sleep(0) end
    end
    workers_done = workers_done + 1
  end
  for _ = 1, 4 do sched.spawn(worker) end
  sched.spawn(function()
    while workers_done < 4 do sched.sleep(0.01) end
    stop = true
    sched.join(acceptor)
    for _, s in ipairs(sockets) do s:close() end
    for _, p in ipairs(processes) do p:wait() end
  end)
  sched.run()
end

local function settle(children_target)
  -- dropped process objects are reaped when their child exits
  local deadline = xpio.gettime() + 5
  repeat
    collectgarbage()
    collectgarbage()
    if children_count() <= children_target then break end
    helper.nap(0.02)
  until xpio.gettime() > deadline
end

round(OPS // 2)                                           -- warm-up
settle(0)
local fds0, children0, lua0, rss0 = open_fds(), children_count(), collectgarbage("count"), rss_kb()
local t0 = xpio.gettime()
round(OPS)
local seconds = xpio.gettime() - t0
settle(children0)
local fds1, children1, lua1, rss1 = open_fds(), children_count(), collectgarbage("count"), rss_kb()
listener:close()
local parts = {}
for name, n in pairs(counts) do parts[#parts + 1] = name .. "=" .. n end
table.sort(parts)
print(string.format("soak mixed: %d operations in %.1f s after a warm-up of %d (%s)", OPS, seconds, OPS // 2,
  table.concat(parts, " ")))
print(string.format("fds: %d -> %d", fds0, fds1))
print(string.format("children: %d -> %d", children0, children1))
print(string.format("lua: %.0f -> %.0f", lua0, lua1))
print(string.format("rss: %d -> %d", rss0, rss1))
print("failures: " .. (#failures == 0 and "none" or table.concat(failures, "; ")))
]==]

describe("soak", function()
  it(string.format("echo server under xpio.sched: %d concurrent TCP clients x %d messages of up to 64 KiB, every byte back in order",
                   CLIENTS, MESSAGES), function()
    local sched = fresh_sched()
    collectgarbage()
    collectgarbage()
    local fds_before = helper.open_fds()
    local listener = assert(xpio.socket("TCP"))
    assert(listener:setsockopt("SO_RCVBUF", SOCKET_BUFFER))   -- inherited by accepted sockets
    assert(listener:setsockopt("SO_SNDBUF", SOCKET_BUFFER))
    assert(listener:bind("127.0.0.1:0"))
    assert(listener:listen(CLIENTS * 2))
    local addr = listener:getsockname()
    local stats = { clients = 0, bytes_sent = 0, bytes_back = 0, messages = 0, connected = 0, peak = 0, open = 0 }
    local failures = {}
    local t0 = xpio.gettime()

    sched.spawn(function()
      for _ = 1, CLIENTS do
        local conn = assert(listener:accept())
        sched.spawn(function()
          while true do
            local data, err = conn:read(65536)
            if not data then
              assert(err == nil, "server read: " .. tostring(err))
              break
            end
            helper.write_all(conn, data)
          end
          assert(conn:close())
        end)
      end
      assert(listener:close())
    end)

    for c = 1, CLIENTS do
      sched.spawn(function()
        local s = assert(xpio.socket("TCP"))
        assert(s:setsockopt("SO_RCVBUF", SOCKET_BUFFER))
        assert(s:setsockopt("SO_SNDBUF", SOCKET_BUFFER))
        assert(s:connect(addr))
        stats.connected = stats.connected + 1
        stats.open = stats.open + 1
        if stats.open > stats.peak then stats.peak = stats.open end
        -- the messages: (offset in POOL, size), replayed by the checker
        local rnd = stream_random(c)
        local plan, total = {}, 0
        for i = 1, MESSAGES do
          local size = 1 + rnd(MAX_MESSAGE)
          plan[i] = { 1 + rnd(POOL_BYTES - size + 1), size }
          total = total + size
        end
        local writer = sched.spawn(function()
          for i = 1, MESSAGES do
            local msg = POOL:sub(plan[i][1], plan[i][1] + plan[i][2] - 1)
            helper.write_all(s, msg)
            stats.bytes_sent = stats.bytes_sent + #msg
          end
          assert(s:shutdown("w"))
        end)
        -- read everything back, comparing byte for byte with what was sent,
        -- in order (stronger than comparing checksums)
        local i, pos, got = 1, 0, 0
        while true do
          local data, err = s:read(65536)
          if not data then
            assert(err == nil, "client read: " .. tostring(err))
            break
          end
          local k = 1
          while k <= #data do
            if not plan[i] then
              failures[#failures + 1] = string.format("client %d: %d bytes more than were sent", c, #data - k + 1)
              break
            end
            local off, size = plan[i][1], plan[i][2]
            local take = math.min(#data - k + 1, size - pos)
            if data:sub(k, k + take - 1) ~= POOL:sub(off + pos, off + pos + take - 1) then
              failures[#failures + 1] = string.format("client %d: message %d differs at byte %d", c, i, pos + 1)
            end
            k, pos = k + take, pos + take
            if pos == size then
              i, pos = i + 1, 0
              stats.messages = stats.messages + 1
            end
          end
          got = got + #data
        end
        sched.join(writer)
        if got ~= total then
          failures[#failures + 1] = string.format("client %d: %d bytes back of %d sent", c, got, total)
        end
        stats.bytes_back = stats.bytes_back + got
        stats.clients = stats.clients + 1
        stats.open = stats.open - 1
        assert(s:close())
      end)
    end

    helper.run_until(sched, 120, function() return stats.clients == CLIENTS end)
    local seconds = xpio.gettime() - t0
    print(string.format("\nsoak echo: %d clients (%d connected at once at the peak), %d messages, %.1f MiB each way, "
                        .. "%.1f s, %.0f MiB/s",
      stats.clients, stats.peak, stats.messages, stats.bytes_back / 1048576, seconds, stats.bytes_back / 1048576 / seconds))
    assert.same({}, failures)
    assert.equal(CLIENTS, stats.clients)
    assert.equal(CLIENTS * MESSAGES, stats.messages)
    assert.equal(stats.bytes_sent, stats.bytes_back)
    assert.equal(CLIENTS, stats.peak, "the clients were not all connected at once")
    collectgarbage()
    collectgarbage()
    assert.equal(fds_before, helper.open_fds())
  end)

  it(string.format("%d children (cat) spawned and waited concurrently, each echoing 1 MiB through pipes", CHILDREN), function()
    local sched = fresh_sched()
    collectgarbage()
    collectgarbage()
    local fds_before = helper.open_fds()
    -- Which children were there before (a child of an earlier test may
    -- still be ending, and go during this one): none of this test's may
    -- be left, and a count would take one ending for one leaked.
    local children_before = helper.children()
    local done, failures, bytes = 0, {}, 0
    local t0 = xpio.gettime()
    for c = 1, CHILDREN do
      sched.spawn(function()
        local in_r, in_w = assert(xpio.pipe())
        local out_r, out_w = assert(xpio.pipe())
        local p = assert(xpio.spawn({ "cat" }, xpio.env, { [0] = in_r, [1] = out_w, [2] = 2 }))
        local offset = (c * 7919) % (POOL_BYTES - 65536)
        local chunk = POOL:sub(offset + 1, offset + 65536)
        local writer = sched.spawn(function()
          for _ = 1, CHILD_BYTES // #chunk do
            helper.write_all(in_w, chunk)
          end
          assert(in_w:close())
        end)
        local got, pos = 0, 0
        while true do
          local data, err = out_r:read(65536)
          if not data then
            assert(err == nil, "read from cat: " .. tostring(err))
            break
          end
          -- the stream is `chunk` repeated
          local k = 1
          while k <= #data do
            local take = math.min(#data - k + 1, #chunk - pos)
            if data:sub(k, k + take - 1) ~= chunk:sub(pos + 1, pos + take) then
              failures[#failures + 1] = string.format("child %d: data differs at byte %d", c, got + k)
            end
            k, pos = k + take, (pos + take) % #chunk
          end
          got = got + #data
        end
        sched.join(writer)
        assert(out_r:close())
        local how, code = p:wait()
        if how ~= "exit" or code ~= 0 then failures[#failures + 1] = string.format("child %d: %s %s", c, how, code) end
        if got ~= CHILD_BYTES then failures[#failures + 1] = string.format("child %d: %d bytes back", c, got) end
        bytes = bytes + got
        done = done + 1
      end)
    end
    helper.run_until(sched, 60, function() return done == CHILDREN end)
    print(string.format("\nsoak children: %d cat processes, %.0f MiB echoed, %.1f s", done, bytes / 1048576, xpio.gettime() - t0))
    assert.same({}, failures)
    assert.equal(CHILDREN, done)
    assert.equal(CHILDREN * CHILD_BYTES, bytes)
    collectgarbage()
    collectgarbage()
    assert.equal(fds_before, helper.open_fds())
    assert.are.same({}, helper.new_children(children_before), "children left behind")
  end)

  it(string.format("%d mixed operations leave descriptors, children and memory near their starting levels", MIXED_OPS), function()
    -- In a child interpreter of its own: a fresh heap, so that VmRSS says
    -- something (after the echo test this process has plenty of free heap).
    local output, ok = helper.run_lua_script(MIXED_SCRIPT, "export XPIO_SOAK_OPS=" .. MIXED_OPS)
    print("\n" .. output:gsub("%s+$", ""))
    assert.is_true(ok, output)
    local r = {}
    for name, values in output:gmatch("(%w+):%s*([^\n]*)") do r[name] = values end
    assert.equal("none", r.failures, output)
    local fds0, fds1 = r.fds:match("(%d+) %-> (%d+)")
    local ch0, ch1 = r.children:match("(%d+) %-> (%d+)")
    local lua0, lua1 = r.lua:match("([%d.]+) %-> ([%d.]+)")
    local rss0, rss1 = r.rss:match("(%d+) %-> (%d+)")
    assert.equal(tonumber(fds0), tonumber(fds1), "descriptors")
    assert.equal(tonumber(ch0), tonumber(ch1), "children")
    assert.is_true(tonumber(lua1) <= tonumber(lua0) + LUA_MEMORY_SLACK_KB,
      string.format("Lua memory grew from %s to %s KiB (bound +%d KiB)", lua0, lua1, LUA_MEMORY_SLACK_KB))
    assert.is_true(tonumber(rss1) <= tonumber(rss0) + RSS_SLACK_KB,
      string.format("VmRSS grew from %s to %s KiB (bound +%d KiB)", rss0, rss1, RSS_SLACK_KB))
  end)
end)
