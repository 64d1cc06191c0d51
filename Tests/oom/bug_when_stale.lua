-- Bug repro (run.sh bugs; once mode): when_read stores the task and the
-- socket in the queue's tables (user values 1 and 2) before it sets the
-- task's _dequeuedata and _dequeue. A memory error there (the task table
-- grows) leaves both entries behind with the reservation lost: the queue
-- keeps the socket alive for as long as the queue lives, so a socket the
-- program drops is never collected (nor its descriptor closed); and the
-- queue's finalizer later meets a task without the fields it clears,
-- which makes it allocate (see the -K note in README.md).
local xpio = require "xpio"

return function()
  local q = assert(xpio.tqueue())
  local a = assert(xpio.socketpair())
  local ok, err = pcall(a.when_read, a, { _queue = q })
  if ok then return end
  assert(err == "not enough memory", err)
  local weak = setmetatable({ [a] = true }, { __mode = "k" })
  a = nil -- luacheck: ignore (dropped)
  collectgarbage()
  collectgarbage()
  if next(weak) then
    error("BUG: a socket whose when_read failed stays referenced by the queue: never collected", 0)
  end
end
