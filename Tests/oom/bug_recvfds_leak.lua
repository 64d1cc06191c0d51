-- Bug repro (run.sh bugs): recvfds returns its data string (result 1)
-- and then the received descriptors (result 2, made into objects under
-- lua_pcall, released if that fails). When pushing the data string raises
-- a memory error, the descriptors were never made into objects nor
-- released: they leak (the host reports "leaked fd"). The string is longer
-- than 40 bytes so that pushing it allocates.
local xpio = require "xpio"

return function()
  local a, b = assert(xpio.socketpair())
  local r = assert(xpio.pipe())
  assert(a:try_sendfds(string.rep("x", 48), { r }))
  local ok, err = pcall(b.try_recvfds, b, 4096)
  assert(ok or err == "not enough memory", err)
end
