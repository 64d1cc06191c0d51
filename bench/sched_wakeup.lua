-- xpio.sched's own cost per wake-up (issue 21), and a channel ping-pong.
--
-- The count is of Lua VM instructions the scheduler runs on its own thread
-- (where sched.run runs) per task wake-up, with debug.sethook's count hook:
-- a hook belongs to one coroutine, and the tasks are made before it is set,
-- so their own code is not counted, only the scheduler's loop between two
-- resumes. Two workloads: tasks woken by the task queue (a byte ping-pong
-- over a socket pair) and tasks woken by the scheduler itself (a ping-pong
-- over two unbuffered channels). Then round trips per second of the channel
-- ping-pong against the floor of a plain coroutine.resume loop handing the
-- value over.
--
--   lua5.4 bench/sched_wakeup.lua [rounds]    (prints a Markdown table)
local xpio = require "xpio"

local ROUNDS = tonumber(arg and arg[1]) or 20000
local GOAL = 40

local function fresh_sched()
  package.loaded["xpio.sched"] = nil
  local sched = require "xpio.sched"
  package.loaded["xpio.sched"] = nil
  sched.onerror(sched.raise)
  return sched
end

--- Two tasks of a fresh scheduler; runs it and returns the VM instructions
--- the scheduler ran per wake-up (each round trip is two) and the seconds.
local function count(make_tasks, rounds)
  local sched = fresh_sched()
  make_tasks(sched, rounds)
  sched.step()                       -- both tasks run to their first wait, unhooked
  local instructions = 0
  local t0 = xpio.gettime()
  debug.sethook(function() instructions = instructions + 1 end, "", 1)
  sched.run()
  debug.sethook()
  return instructions / (2 * rounds), xpio.gettime() - t0
end

local function socket_pingpong(sched, rounds)
  local a, b = assert(xpio.socketpair())
  sched.spawn(function()
    for _ = 1, rounds do
      assert(a:write("x"))
      assert(a:read(1))
    end
    a:close()
  end)
  sched.spawn(function()
    for _ = 1, rounds do
      assert(b:read(1))
      assert(b:write("y"))
    end
    b:close()
  end)
end

local function channel_pingpong(sched, rounds)
  local ping, pong = sched.channel(), sched.channel()
  sched.spawn(function()
    for i = 1, rounds do
      ping:send(i)
      pong:receive()
    end
  end)
  sched.spawn(function()
    for _ = 1, rounds do pong:send(ping:receive()) end
  end)
end

-- The floor: the same hand-over between two coroutines, each resumed by
-- hand once per round trip with the value the other yielded.
local function floor_rate(rounds)
  local ping = coroutine.wrap(function(v)
    for i = 1, rounds do v = coroutine.yield(i) end
    return v
  end)
  local pong = coroutine.wrap(function(v)
    while true do v = coroutine.yield(v) end
  end)
  local t0 = xpio.gettime()
  local v = ping()
  for _ = 1, rounds - 1 do v = ping(pong(v)) end
  return rounds / (xpio.gettime() - t0)
end

local socket_per, _ = count(socket_pingpong, ROUNDS)
local channel_per, _ = count(channel_pingpong, ROUNDS)
-- rates without the hook
local sched = fresh_sched()
channel_pingpong(sched, ROUNDS)
local t0 = xpio.gettime()
sched.run()
local channel_rate = ROUNDS / (xpio.gettime() - t0)
local floor = floor_rate(ROUNDS)

local function verdict(x) return x <= GOAL and "met" or "short" end
print("| xpio.sched wake-up | measured | |")
print("|---|---:|---|")
print(("| VM instructions per wake-up, socket ping-pong (goal <= %d) | %.1f | %s |"):format(GOAL, socket_per,
  verdict(socket_per)))
print(("| VM instructions per wake-up, channel ping-pong (goal <= %d) | %.1f | %s |"):format(GOAL, channel_per,
  verdict(channel_per)))
print(("| channel ping-pong (round trips/s) | %.0f | %.2f x the coroutine.resume floor (%.0f) |"):format(channel_rate,
  channel_rate / floor, floor))
