-- OOM scenario: signals as events. xpio.signal("USR1") (a signalfd and
-- the signal blocked on epoll; a handler and a self-pipe on poll), a child
-- that sends it, try_wait/when_wait, a second watch refused, close, and a
-- watch dropped to the collector. The host checks after lua_close that
-- the signal mask and every handler are as they were.
local xpio = require "xpio"
local oom = require "oomlib"
local retry, check = oom.retry, oom.check

-- Has a child send `name` to this process, and waits for the child.
local function send(q, name)
  local p = assert(oom.retry(xpio.spawn, { "/bin/sh", "-c", "kill -" .. name .. " $PPID" }))
  local kind, code = oom.complete(q, p, "try_wait", "when_wait")
  check(kind == "exit" and code == 0, "the sender: " .. tostring(kind) .. " " .. tostring(code))
end

return function()
  local q = retry(xpio.tqueue)
  local usr1 = assert(retry(xpio.signal, "USR1"))
  check(retry(usr1.number, usr1) == 10, "number")
  local again, err = retry(xpio.signal, "SIGUSR1")
  check(again == nil and err == "xpio: the signal is already watched", "a second watch: " .. tostring(err))
  send(q, "USR1")
  local number, sender = oom.complete(q, usr1, "try_wait", "when_wait")
  check(number == 10 and type(sender) == "number", "delivery: " .. tostring(number))
  assert(retry(usr1.close, usr1))
  check(select(2, usr1:close()) == "xpio: signal is closed", "closed twice")

  -- A watch with a delivery pending, dropped: the collector closes it,
  -- discarding the delivery and putting the mask back.
  local usr2 = assert(retry(xpio.signal, 12))
  send(q, "USR2")
  check(retry(tostring, usr2) == "xpio.signal: signal 12", "tostring")
  usr2 = nil -- luacheck: ignore
  collectgarbage()
  retry(q.close, q)
end
