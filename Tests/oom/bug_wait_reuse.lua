-- Bug repro (run.sh bugs; once mode): a tqueue:wait whose result array
-- cannot be made (a memory error) keeps its ready waiter ids for the next
-- wait. If the program dequeues one of those tasks and schedules another
-- in between, the new task gets the freed id, and the next wait returns it
-- although its socket is not ready; it is then unscheduled in Lua but
-- still waiting in the runtime, so the queue is never empty again (a
-- wait() without timeout blocks instead of answering nil).
local xpio = require "xpio"

return function()
  local q = assert(xpio.tqueue())
  local a, b = assert(xpio.socketpair())
  local ready = { _queue = q }
  assert(a:when_write(ready))          -- writable: ready at the next wait
  local ok, err = pcall(q.wait, q, 1)  -- the sweep makes this fail at some N
  if ok then return end
  assert(err == "not enough memory", err)
  assert(ready:_dequeue())             -- the program drops the ready task...
  local late = { _queue = q }
  assert(b:when_read(late))            -- ...and waits to read b: nothing comes
  local got = q:wait(0)
  if #got > 0 then
    error(string.format("BUG: wait returned %d task(s), the late one: %s; then isEmpty() = %s with no task scheduled",
      #got, tostring(got[1] == late), tostring(q:isEmpty())), 0)
  end
end
