-- Drive xpio.sched from luv's event loop: luv is in charge, and XPIO tasks
-- (blocking read/write, sched.sleep, sched.timeout, xpio.run) run inside it.
--
-- The bridge is three calls: sched.pollfd() is a descriptor readable when
-- tasks are ready (luv watches it with a poll handle), sched.deadline() says
-- when the scheduler next needs a step (a luv timer waits for it), and
-- sched.step() runs what is ready. step restores the current task it found,
-- so it can be called from any callback. On the poll backend there is no
-- descriptor: the timer then also looks at the queue every 10 ms.
--
--   LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/luv_embed.lua
local uv = require "luv"
local xpio = require "xpio"
local sched = require "xpio.sched"

--- Runs xpio.sched inside luv until its tasks are done; returns the number
--- of steps taken.
local function bridge()
  local steps = 0
  local fd = sched.pollfd()
  local poll = fd and uv.new_poll(fd)
  local timer = uv.new_timer()
  local function drive()
    steps = steps + 1
    if not sched.step() then            -- no task left: close our handles, and uv.run returns
      if poll then poll:close() end
      timer:close()
      return
    end
    local wait = sched.deadline()
    if not poll then wait = math.min(wait or 0.01, 0.01) end
    timer:stop()
    if wait then timer:start(math.ceil(wait * 1000), 0, drive) end
  end
  if poll then poll:start("r", drive) end
  timer:start(0, 0, drive)
  return function() return steps end
end

local a, b = assert(xpio.socketpair())
local ROUNDS = 3

-- Answers every "ping N" with "pong N" until the other end closes.
sched.spawn(function()
  while true do
    local msg = b:read(100)             -- nothing to read yet: this task waits in the queue
    if not msg then break end
    assert(b:write((msg:gsub("ping", "pong"))))
  end
  b:close()
end)

local replies = {}
sched.spawn(function()
  for n = 1, ROUNDS do
    sched.sleep(0.01)                   -- a scheduler timer, under luv
    assert(a:write("ping " .. n))
    replies[n] = assert(a:read(100))
    print("got " .. replies[n])
  end
  print("timeout: " .. select(2, sched.timeout(0.05, a.read, a, 100)))
  print("run: " .. table.concat({ xpio.run({ "echo", "from a child" }) }, " "):gsub("\n", ""))
  a:close()
end)

local steps = bridge()
uv.run()
assert(#replies == ROUNDS and replies[ROUNDS] == "pong " .. ROUNDS, "exchange incomplete")
print(("luv_embed: %d round trips through luv, %d steps"):format(#replies, steps()))
