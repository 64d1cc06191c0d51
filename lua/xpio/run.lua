--- xpio.run(args, [opts]): run a command to its end from a task of
--- xpio.sched and collect what it wrote. What it takes and returns is the
--- spec's (Spec/module.spec, `function run`; docs/API.md): xpio.run, made
--- by the glue, loads this module and calls it. This file is the how.
---
---   sched.spawn(function()
---     local status, code, out, err = xpio.run({ "make", "-j2" }, { timeout = 600 })
---   end)
local xpio = require "xpio"

--- Reads `r` to its end (or until it is closed under the reader) into
--- `chunks`, keeping at most `limit` bytes (nil: all): the rest is read and
--- dropped, so a chatty command never blocks on a full pipe, and
--- `chunks.truncated` says so.
local function collect(r, chunks, limit)
  local kept = 0
  for data in function() return r:read(65536) end do
    if limit and kept + #data > limit then
      data = data:sub(1, limit - kept)
      chunks.truncated = true
    end
    if #data > 0 then
      chunks[#chunks + 1] = data
      kept = kept + #data
    end
  end
end

--- Stops the command's whole process group (it leads one): SIGTERM, up to
--- `grace` seconds for the command to exit, then SIGKILL to the group
--- whatever happened, so that no descendant (one ignoring SIGTERM, one that
--- outlived the command) survives. Returns the command's status as `wait`.
local function stop_group(sched, process, grace)
  process:killgroup("TERM")
  local status, code = sched.timeout(grace, process.wait, process)
  process:killgroup("KILL")
  if status == nil then status, code = process:wait() end
  if status == nil then return "signal", 9 end -- an outer deadline passed: KILL was sent
  return status, code
end

--- luaL-style argument errors for the option fields (the glue checked the
--- types of `args` and `opts` themselves).
local function check_option(value, name, expected)
  if value == nil then return value end
  local ok
  if expected == "count" then
    ok = math.type(value) == "integer" and value >= 0
    expected = "non-negative integer"
  else
    ok = type(value) == expected and value == value   -- NaN is no number of seconds
  end
  if not ok then
    local got = value ~= value and "NaN" or type(value)
    error(("bad argument #2 to 'run' (field '%s': %s expected, got %s)"):format(name, expected, got), 0)
  end
  return value
end

--- spawn's argument errors as run's own: spawn's args are run's, its env
--- and attrs.cwd run's option fields (the spawn below checks them all, so
--- they are checked in one place).
local function as_run_error(message)
  message = tostring(message):gsub("^[^:]*:%d+: ", "")
  return (message:gsub("^bad argument #1 to 'spawn' %(", "bad argument #1 to 'run' (")
    :gsub("^bad argument #2 to 'spawn' %(", "bad argument #2 to 'run' (field 'env': ")
    :gsub("^bad argument #4 to 'spawn' %(", "bad argument #2 to 'run' (field 'cwd': "))
end

--- Writes all of `data` to `w`, then closes it; a reader that went away
--- ends the writing quietly (the command did not want its input), and so
--- does `w` closed under a waiting write (run returning).
local function feed(w, data)
  w:write(data) -- all of it, or the reader went away
  w:close()
end

local function close_all(list)
  for _, s in ipairs(list) do s:close() end
end

return function(args, given)
  -- options are read raw, as XPIO reads every table of the caller's
  local function opt(name) return given and rawget(given, name) end
  local opts = {
    scheduler = check_option(opt("scheduler"), "scheduler", "table"),
    stdin = check_option(opt("stdin"), "stdin", "string"),
    stderr = check_option(opt("stderr"), "stderr", "string"),
    env = check_option(opt("env"), "env", "table"),
    cwd = check_option(opt("cwd"), "cwd", "string"),
    timeout = check_option(opt("timeout"), "timeout", "number"),
    grace = check_option(opt("grace"), "grace", "number"),
    linger = check_option(opt("linger"), "linger", "number"),
    max_output = check_option(opt("max_output"), "max_output", "count"),
  }
  if opts.stderr and opts.stderr ~= "stdout" then
    error("bad argument #2 to 'run' (field 'stderr': \"stdout\" or nil expected)", 0)
  end
  local sched = opts.scheduler or require "xpio.sched"
  -- before anything starts: a command started and then left to run by an
  -- error would outlive the call
  local task = sched.current()
  if not task then error("xpio.run: must be called from a task of xpio.sched", 0) end
  if task._thread and coroutine.running() ~= task._thread then
    error("xpio.run would wait in a coroutine that is not the task's own (a coroutine inside a task cannot wait)", 0)
  end
  local ours, theirs = {}, {}
  local function pipe()
    local r, w = xpio.pipe()
    if not r then
      close_all(ours)
      close_all(theirs)
      return nil, w
    end
    return r, w
  end
  local files = { [0] = "null" }
  local stdin_w
  if opts.stdin then
    local r, w = pipe()
    if not r then return nil, w end
    files[0], stdin_w = r, w
    theirs[#theirs + 1], ours[#ours + 1] = r, w
  end
  local out_r, out_w = pipe()
  if not out_r then return nil, out_w end
  files[1] = out_w
  ours[#ours + 1], theirs[#theirs + 1] = out_r, out_w
  local err_r
  if opts.stderr == "stdout" then
    files[2] = "stdout"
  else
    local w
    err_r, w = pipe()
    if not err_r then return nil, w end
    files[2] = w
    ours[#ours + 1], theirs[#theirs + 1] = err_r, w
  end

  -- its own process group, so that a timeout can stop everything it started
  local spawned, process, why = pcall(xpio.spawn, args, opts.env or xpio.env, files, { cwd = opts.cwd, pgroup = true })
  if not (spawned and process) then
    close_all(ours)
    close_all(theirs)
    if not spawned then error(as_run_error(process), 0) end
    return nil, why
  end
  -- spawn closed the child's ends (theirs) in this process

  local out, err = {}, {}
  local readers = { sched.spawn(collect, out_r, out, opts.max_output) }
  if err_r then readers[#readers + 1] = sched.spawn(collect, err_r, err, opts.max_output) end
  local feeder = stdin_w and sched.spawn(feed, stdin_w, opts.stdin)

  local status, code
  if opts.timeout then
    status, code = sched.timeout(opts.timeout, process.wait, process)
  else
    status, code = process:wait()
  end
  if status == nil then
    -- a timeout, or the calling task cancelled: either way the command
    -- and everything it started are stopped
    local reason = code
    local _, signal = stop_group(sched, process, opts.grace or 1)
    if reason == "timeout" then
      status, code = "timeout", signal
    else
      status, code = nil, reason
    end
  end

  -- What is left in the pipes: read until they end, or for `linger` seconds
  -- when something the command started still holds them; closing our ends
  -- then wakes the readers. Standard input ends there too (something left
  -- behind may hold it and never read): closing our end wakes the feeder,
  -- whose write fails, and it ends; neither it nor the pipe outlives the call.
  local deadline = sched.now() + (opts.linger or 1)
  local function reading()
    for _, reader in ipairs(readers) do if not reader.done then return true end end
    return false
  end
  while reading() and sched.now() < deadline do
    if not sched.sleep(0.01) then break end -- an outer deadline passed: do not spin
  end
  out_r:close()
  if err_r then err_r:close() end
  if feeder then
    stdin_w:close()
    sched.join(feeder)
  end
  for _, reader in ipairs(readers) do sched.join(reader) end
  if out.truncated or err.truncated then return status, code, table.concat(out), table.concat(err), true end
  return status, code, table.concat(out), table.concat(err)
end
