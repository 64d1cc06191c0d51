-- OOM scenario: loading. Run with nothing preloaded (oom_host -p -), so
-- that require "xpio" (luaopen_xpio: the module table, the metatables,
-- xpio.env from the environment) and require "xpio.sched" (which makes its
-- queue) are swept. A load cut short by a memory error leaves a partial
-- module to the collector, and must leak nothing.
return function()
  local xpio = require "xpio"
  local sched = require "xpio.sched"
  assert(type(xpio.env) == "table" and xpio.version())
  local s <close> = assert(xpio.socket("TCP"))
  assert(s:fileno())
  sched.spawn(function() sched.sleep(0) end)
  sched.run()
end
