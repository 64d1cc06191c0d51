-- OOM scenario: sockets without a scheduler. TCP socket, options, bind,
-- listen, connect and accept with try_/when_ and tqueue:wait, names;
-- read and write on a socketpair and a pipe; UDP sendto/recvfrom; fdopen;
-- tostring, close, <close> and collection of every kind.
local xpio = require "xpio"
local oom = require "oomlib"
local retry, check = oom.retry, oom.check

return function()
  local q = retry(xpio.tqueue)

  local server = assert(retry(xpio.socket, "TCP"))
  assert(retry(server.setsockopt, server, "SO_REUSEADDR", true))
  check(retry(server.getsockopt, server, "SO_REUSEADDR") == true, "getsockopt")
  assert(retry(server.bind, server, "127.0.0.1:0"))
  assert(retry(server.listen, server))
  local address = assert(retry(server.getsockname, server))

  -- connect: try_connect answers "retry" (EINPROGRESS) until it completes.
  local client = assert(retry(xpio.socket, "TCP"))
  assert(retry(client.setsockopt, client, "TCP_NODELAY", true))
  local ok, err = oom.complete(q, client, "try_connect", "when_write", address)
  check(ok == true, "connect: " .. tostring(err))
  local conn = assert(oom.complete(q, server, "try_accept", "when_read"))
  check(retry(conn.getpeername, conn) == retry(client.getsockname, client), "peer name")

  -- Writes `text`, then reads it on the other side (see oomlib.read for
  -- bytes a memory error loses). The texts are longer than 40 bytes: Lua
  -- interns shorter strings, and one equal to a literal of this file would
  -- be pushed without an allocation.
  local function exchange(from, to, text)
    assert(oom.complete(q, from, "try_write", "when_write", text))
    local got = ""
    while #got < #text do
      local data, e = oom.read(q, to, "try_read", 4096)
      if e == oom.LOST then return end
      assert(data, e)
      got = got .. data
    end
    check(got == text, "exchange: got " .. got)
  end

  exchange(client, conn, string.rep("hello over tcp ", 5))
  exchange(conn, client, string.rep("and back ", 9))

  local a, b = retry(xpio.socketpair)
  assert(a and b, "socketpair")
  exchange(a, b, string.rep("hello over a socketpair ", 4))
  local r, w = retry(xpio.pipe)
  assert(r and w, "pipe")
  exchange(w, r, string.rep("through a pipe ", 5))
  assert(retry(w.shutdown, w, "w") or true)
  assert(retry(w.close, w))
  check(select(2, w:close()) == "xpio: socket is closed", "closed twice")

  -- UDP: a datagram and its sender.
  local u1 = assert(retry(xpio.socket, "UDP"))
  local u2 = assert(retry(xpio.socket, "UDP"))
  assert(retry(u1.bind, u1, "127.0.0.1:0"))
  assert(retry(u2.bind, u2, "127.0.0.1:0"))
  local to = assert(retry(u2.getsockname, u2))
  assert(oom.complete(q, u1, "try_sendto", "when_write", "datagram", to))
  local dgram, from = oom.read(q, u2, "try_recvfrom", 100)
  if dgram then check(from == retry(u1.getsockname, u1), "recvfrom sender") end

  -- fdopen, tostring, fileno, <close>, and objects dropped to the collector.
  do
    local dup <close> = assert(retry(xpio.fdopen, 1))
    check(type(retry(dup.fileno, dup)) == "number", "fileno")
    check(type(retry(tostring, dup)) == "string", "tostring")
    check(type(retry(tostring, q)) == "string", "tostring of a queue")
  end
  for _ = 1, 8 do retry(xpio.socket, "TCP") end
  for _ = 1, 2 do retry(xpio.socketpair) end
  -- Other families, dropped at once.
  check(retry(xpio.socket, "UDP", "inet6") ~= false, "inet6 socket")
  check(retry(xpio.socket, "TCP", "unix") ~= false, "unix socket")
  collectgarbage()

  for _, s in ipairs({ server, client, conn, a, b, r, u1, u2 }) do retry(s.close, s) end
  retry(q.close, q)
end
