-- Bug repro (run.sh bugs: XPIO_NO_PIDFD=1, oom_host -c): a state that
-- loads the module twice (package.loaded.xpio = nil, then require again)
-- has one closing sentinel, so it must count as one state; counted twice,
-- its lua_close never took the SIGCHLD fallback's handler down, and the
-- host's check of signal handlers after lua_close failed. The scenario is
-- bug_unload_sigchld.lua's (a child spawned and waited for), run by the
-- module loaded the second time.
package.loaded.xpio = nil
return require "bug_unload_sigchld"
