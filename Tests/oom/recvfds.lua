-- OOM scenario: descriptor passing. sendfds with sockets and numbers,
-- recvfds making the received descriptors into socket objects (an array
-- made after the body, under lua_pcall, releasing what it could not make).
-- Every received descriptor must end up in an object, or closed: the host
-- checks the descriptors after lua_close.
local xpio = require "xpio"
local oom = require "oomlib"
local retry, check = oom.retry, oom.check

return function()
  local q = retry(xpio.tqueue)
  local a, b = retry(xpio.socketpair)
  assert(a and b, "socketpair")
  local r, w = retry(xpio.pipe)
  assert(r and w, "pipe")

  -- Sends `count` descriptors with a message longer than 40 bytes (pushing
  -- it allocates), receives them, checks them and closes them.
  local function pass(count, tag)
    local files = {}
    for i = 1, count do files[i] = i % 3 == 0 and 1 or (i % 2 == 0 and r or w) end
    local text = string.rep(tag, 48)
    assert(oom.complete(q, a, "try_sendfds", "when_write", text, files))
    local data, received = oom.read(q, b, "try_recvfds", 4096, 32)
    if received == oom.LOST then return end
    check(data == text, "recvfds data")
    check(#received == count, "recvfds: " .. #received .. " of " .. count .. " descriptors")
    for _, s in ipairs(received) do
      check(type(retry(s.fileno, s)) == "number", "a received socket")
      retry(s.close, s)
    end
  end

  pass(3, "a")
  pass(20, "b")
  pass(1, "c")
  -- Received and dropped: the collector closes them.
  assert(oom.complete(q, a, "try_sendfds", "when_write", string.rep("d", 48), { r, w }))
  oom.read(q, b, "try_recvfds", 4096)
  collectgarbage()
  for _, s in ipairs({ a, b, r, w }) do retry(s.close, s) end
end
