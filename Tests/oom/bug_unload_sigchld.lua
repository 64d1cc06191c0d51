-- Bug repro (run.sh bugs: XPIO_NO_PIDFD=1, oom_host -X, without -P): the
-- SIGCHLD fallback (no pidfds) installs a process-wide handler in xpio.so
-- and never removes it. Once lua_close has unloaded xpio.so, the next
-- child of the host that exits (-X runs /bin/true after lua_close) calls
-- the handler in unmapped code: SIGSEGV. Here every child of XPIO's has
-- been waited for: no reaper thread is involved (compare bug_unload.lua).
local xpio = require "xpio"

return function()
  local q = assert(xpio.tqueue())
  local p = assert(xpio.spawn({ "/bin/true" }))
  local task = { _queue = q }
  while not p:try_wait() do
    assert(p:when_wait(task))
    q:wait(5)
  end
  q:close()
end
