-- OOM scenario: processes. spawn with a large environment (300 variables
-- besides the parent's) and a files map (pipes both ways, "null", a
-- socket as descriptor 3, a number), try_wait/when_wait; a failed spawn;
-- attrs; killgroup; stop with a grace period; running children dropped
-- to the collector (XPIO's reaper takes them). A spawn that raised a
-- memory error must have started no child (C makes the process object
-- before the body runs). Children live at most 0.5 s: one that a memory
-- error leaves behind must be reaped within the host's settle time.
local xpio = require "xpio"
local oom = require "oomlib"
local retry, check = oom.retry, oom.check

-- Set-up, not swept: the environment table.
local env = {}
for name, value in pairs(xpio.env) do env[name] = value end
for i = 1, 300 do env["OOM_VARIABLE_" .. i] = "value number " .. i end
local script = 'read line; echo "$line $OOM_VARIABLE_150"; echo three >&3; echo err >&2'

-- spawn, retried; a memory error must leave no child behind.
local function spawn(args, environment, files, attrs)
  local before = oom.children()
  local function no_child() check(oom.children() == before, "a spawn that failed left a child") end
  return oom.retry_checked(no_child, xpio.spawn, args, environment, files, attrs)
end

-- Waits for `p` with try_wait/when_wait on `q`.
local function wait(q, p)
  return oom.complete(q, p, "try_wait", "when_wait")
end

return function()
  local q = retry(xpio.tqueue)
  local in_r, in_w = retry(xpio.pipe)
  local out_r, out_w = retry(xpio.pipe)
  local three_parent, three_child = retry(xpio.socketpair)
  assert(in_r and out_r and three_parent, "pipes")
  local p = assert(spawn({ "/bin/sh", "-c", script }, env,
    { [0] = in_r, [1] = out_w, [2] = "null", [3] = three_child, [4] = 2 }))
  check(type(retry(p.pid, p)) == "number", "pid")
  assert(oom.complete(q, in_w, "try_write", "when_write", "hello\n"))
  retry(in_w.close, in_w)
  local line = oom.read(q, out_r, "try_readline")
  check(line == nil or line == "hello value number 150" or oom.read_failed, "the child's line: " .. tostring(line))
  local kind, code = wait(q, p)
  check(kind == "exit" and code == 0, "exit status: " .. tostring(kind) .. " " .. tostring(code))
  check(retry(p.try_wait, p) == "exit", "the status is kept")

  -- A program that does not exist: nil, message, and no child.
  local none, err = spawn({ "/nonexistent/oom-program" }, env)
  check(none == nil and type(err) == "string", "a failed spawn")

  -- attrs, and a child's group killed.
  local sleeper = assert(spawn({ "sleep", "0.5" }, nil, { [1] = "null" }, { cwd = "/", pgroup = true, umask = 18 }))
  assert(retry(sleeper.killgroup, sleeper, "TERM"))
  kind, code = wait(q, sleeper)
  check(kind == "signal" and code == 15, "killed: " .. tostring(kind) .. " " .. tostring(code))

  -- stop: SIGTERM, ignored here, then SIGKILL once the grace period ends.
  local stubborn = assert(spawn({ "/bin/sh", "-c", "trap '' TERM; sleep 0.5" }))
  kind, code = oom.complete(q, stubborn, "try_stop", "when_stop", 0.05)
  check(kind == "signal" and (code == 9 or code == 15), "stopped: " .. tostring(kind) .. " " .. tostring(code))

  -- Running children dropped: the collector hands them to the reaper.
  for _ = 1, 3 do spawn({ "sleep", "0.05" }, env) end
  collectgarbage()
  for _, s in ipairs({ in_r, out_r, out_w, three_parent }) do retry(s.close, s) end
  retry(q.close, q)
end
