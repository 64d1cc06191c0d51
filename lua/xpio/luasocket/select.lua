--- xpio.luasocket.select: socket.select(recvt, sendt, timeout) on XPIO.
--- Each ready entry is in its result array and a key whose value is its
--- index there, as select.c makes them.
--
-- Each entry is anything with getfd (and maybe dirty), as in LuaSocket; an
-- entry holding buffered bytes (dirty) is readable at once. The waits go on
-- a private queue, one proxy task per entry and direction. Outside a task
-- the call waits on that queue; in an xpio.sched task it parks on the
-- queue's descriptor (tqueue:fileno, epoll), so other tasks run. The poll
-- backend has no such descriptor: there a task polls the private queue
-- every 10 ms.
local xpio = require "xpio"
local wait = require "xpio.luasocket.wait"

local gettime = xpio.gettime

-- The XPIO socket to wait on for entry `s`: its own, or a duplicate of the
-- descriptor it names (closed after the call).
local function handle(s, dups)
  local xs = type(s) == "table" and s.xpio and s:xpio()
  if xs then return xs end
  local fd = s.getfd and s:getfd()
  fd = math.tointeger(fd)
  if not fd or fd < 0 then return nil end
  local dup = xpio.fdopen(fd)
  if dup then dups[#dups + 1] = dup end
  return dup
end

-- select.c takes nil for an empty set, else a table, and the timeout
-- with luaL_optnumber.
local function checkset(v, n)
  if v == nil then return {} end
  if type(v) ~= "table" then
    error(("bad argument #%d to 'select' (table expected, got %s)"):format(n, type(v)), 3)
  end
  return v
end

return function(recvt, sendt, timeout)
  recvt, sendt = checkset(recvt, 1), checkset(sendt, 2)
  if timeout ~= nil and (type(timeout) ~= "number" and type(timeout) ~= "string" or not tonumber(timeout)) then
    error(("bad argument #3 to 'select' (number expected, got %s)"):format(type(timeout)), 2)
  end
  timeout = tonumber(timeout)
  local deadline = timeout and timeout >= 0 and gettime() + timeout or nil
  local readable, writable = {}, {}
  local queue = assert(xpio.tqueue())
  local proxies, dups = {}, {}
  local function add(list, s, xs, when)
    local proxy = { _queue = queue, sock = s, list = list }
    if xs[when](xs, proxy) then proxies[#proxies + 1] = proxy end
  end
  -- An entry holding buffered bytes is readable at once; the others are
  -- still looked at, without waiting (select.c: a dirty entry makes the
  -- timeout 0), so one busy client cannot hide the rest.
  for _, s in ipairs(recvt) do
    if s.dirty and s:dirty() and not readable[s] then
      readable[#readable + 1] = s
      readable[s] = #readable
    end
  end
  if #readable > 0 then deadline = gettime() end
  for _, s in ipairs(recvt) do
    if not readable[s] then
      local xs = handle(s, dups)
      if xs then add(readable, s, xs, "when_read") end
    end
  end
  for _, s in ipairs(sendt) do
    local xs = handle(s, dups)
    if xs then add(writable, s, xs, "when_write") end
  end
  local sched = wait.task_sched()
  local ready
  if deadline and deadline <= gettime() then
    ready = queue:wait(0)
  elseif sched then
    local fd = queue:fileno()
    local efd = fd and xpio.fdopen(fd)
    if efd then
      wait.wait(efd, wait.readable, deadline)
      efd:close()
      ready = queue:wait(0)
    else
      repeat
        ready = queue:wait(0)
        if #ready > 0 or (deadline and gettime() >= deadline) then break end
        sched.sleep(0.01)
      until false
    end
  elseif #proxies > 0 or deadline then
    ready = queue:wait(deadline and math.max(0, deadline - gettime()))
  end
  for _, proxy in ipairs(ready or {}) do
    local list, s = proxy.list, proxy.sock
    if not list[s] then
      list[#list + 1] = s
      list[s] = #list
    end
  end
  for _, proxy in ipairs(proxies) do
    if proxy._dequeue then proxy:_dequeue() end
  end
  for _, dup in ipairs(dups) do dup:close() end
  queue:close()
  if #readable == 0 and #writable == 0 then return readable, writable, "timeout" end
  return readable, writable
end
