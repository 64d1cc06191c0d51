-- Run shell commands in parallel, at most LIMIT at a time, capture each one's
-- stdout and stderr through pipes, kill any that runs past TIMEOUT seconds,
-- and print a summary table.
--
--   LUA_CPATH="build/?.so;;" LUA_PATH="lua/?.lua;;" lua5.4 examples/jobs.lua
local xpio = require "xpio"
local sched = require "xpio.sched"

local LIMIT, TIMEOUT = 3, 1.0

local commands = {
  "echo hello",
  "seq 1 20000",
  "echo to stderr >&2; exit 3",
  "ls /nonexistent-directory",
  "sleep 0.3; echo slept",
  "echo started; sleep 30",             -- runs past TIMEOUT and is killed
  "yes | head -c 100000",
}

-- Read a pipe to its end; returns the number of bytes read.
local function drain(pipe)
  local total = 0
  while true do
    local data = pipe:read(65536)
    if not data then break end          -- end of stream, or the pipe was closed
    total = total + #data
  end
  pipe:close()
  return total
end

local function run(command)
  local started = xpio.gettime()
  -- stdin: a pipe whose write end is closed at once, so the child reads EOF.
  local stdin, stdin_w = assert(xpio.pipe())
  stdin_w:close()
  local out_r, out_w = assert(xpio.pipe())
  local err_r, err_w = assert(xpio.pipe())
  -- The child gets exactly descriptors 0, 1 and 2; spawn closes our copies of
  -- stdin, out_w and err_w, so the pipes end when the child's side closes.
  -- pgroup: the job leads its own process group, so it can be killed whole.
  local child = assert(xpio.spawn({ "sh", "-c", command }, xpio.env,
    { [0] = stdin, [1] = out_w, [2] = err_w }, { pgroup = true }))
  local out_task = sched.spawn(drain, out_r)
  local err_task = sched.spawn(drain, err_r)

  -- Watchdog: after TIMEOUT seconds, kill the child (SIGKILL). What the shell
  -- started (its `sleep`) would keep the pipes open, so kill its process group
  -- too, with the shell's `kill` builtin (no descriptors: it has nothing to say).
  local finished, timed_out = false, false
  sched.spawn(function()
    local deadline = started + TIMEOUT
    while not finished and xpio.gettime() < deadline do sched.sleep(0.02) end
    if not finished then
      timed_out = true
      assert(child:kill())
      local killer = assert(xpio.spawn({ "sh", "-c", "kill -KILL -" .. child:pid() }, xpio.env))
      killer:wait()
    end
  end)

  local how, code = child:wait()
  local out_bytes, err_bytes = sched.join(out_task), sched.join(err_task)
  finished = true
  local status = how .. " " .. code
  if timed_out then status = status .. " (timeout)" end
  return { command = command, status = status, out = out_bytes, err = err_bytes,
           seconds = xpio.gettime() - started, ok = how == "exit" and code == 0,
           timed_out = timed_out }
end

-- A fixed pool of LIMIT workers takes commands from a shared list.
local results, next_job = {}, 1
local function worker()
  while next_job <= #commands do
    local i = next_job
    next_job = next_job + 1
    results[i] = run(commands[i])
  end
end
for _ = 1, LIMIT do sched.spawn(worker) end

local t0 = xpio.gettime()
sched.run()
local elapsed = xpio.gettime() - t0

local format = "%-30s %-20s %8s %8s %8s"
print(format:format("command", "status", "out", "err", "seconds"))
local ok, failed, killed = 0, 0, 0
for _, r in ipairs(results) do
  print(format:format(r.command, r.status, r.out, r.err, ("%.2f"):format(r.seconds)))
  if r.ok then ok = ok + 1 elseif r.timed_out then killed = killed + 1 else failed = failed + 1 end
end
print(("jobs: %d run, %d ok, %d failed, %d timed out, %.2f s with %d at a time")
  :format(#results, ok, failed, killed, elapsed, LIMIT))
