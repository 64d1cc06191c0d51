-- Bug repro (run.sh bugs, without -P; no allocation needs to fail): the
-- last lua_close unloads xpio.so (Lua's package library dlcloses it), but
-- threads of XPIO's still run its code: the reaper thread of a running
-- child whose process object was collected returns from waitpid into
-- unmapped code (SIGSEGV in reaper, Sources/CSystem/shim.c), and a
-- resolver worker whose lookup ends after the close does the same, or
-- aborts in pthread_cond_wait on its unmapped condition variable
-- (Sources/CSystem/resolver.c). A host that goes on after lua_close dies.
local xpio = require "xpio"

return function()
  xpio.spawn({ "/bin/sleep", "0.2" }) -- dropped while it runs
  collectgarbage()
  xpio.try_resolve("host.invalid", "80") -- a lookup still in flight at lua_close
end
