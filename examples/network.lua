-- Networking beyond IPv4: an IPv6 echo, a Unix socket by path, names
-- resolved off the Lua thread, datagrams answered to their sender, and a
-- read bounded in time.
local xpio = require "xpio"
local sched = require "xpio.sched"

--- Serves one connection of `listener`: echoes until end of stream.
local function echo_once(listener)
  local conn = assert(listener:accept())
  for data in function() return conn:read(4096) end do assert(conn:write(data)) end
  conn:close()
end

--- Connects to `address` and returns what an echo of `message` gives back.
local function round_trip(family, address, message)
  local s = assert(xpio.socket("TCP", family))
  assert(s:connect(address))
  assert(s:write(message))
  s:shutdown("w")
  local got = {}
  for data in function() return s:read(4096) end do got[#got + 1] = data end
  s:close()
  return table.concat(got)
end

sched.spawn(function()
  -- IPv6: addresses in brackets, both ways.
  local six = assert(xpio.socket("TCP", "inet6"))
  assert(six:bind("[::1]:0"))
  assert(six:listen())
  sched.spawn(echo_once, six)
  print("ipv6: " .. six:getsockname() .. " echoed " .. round_trip("inet6", six:getsockname(), "hello over IPv6"))
  six:close()

  -- A Unix socket by path: nobody removes the path but you.
  local path = os.tmpname()
  os.remove(path)
  local unix = assert(xpio.socket("TCP", "unix"))
  assert(unix:bind("unix:" .. path))
  assert(unix:listen())
  sched.spawn(echo_once, unix)
  print("unix: " .. unix:getsockname() .. " echoed " .. round_trip("unix", "unix:" .. path, "hello over a path"))
  unix:close()
  os.remove(path)

  -- Names: resolve on a worker thread, or let connect do it.
  print("resolve: localhost:https is " .. table.concat(assert(xpio.resolve("localhost", "https")), " and "))
  local byname = assert(xpio.socket("TCP"))
  assert(byname:bind("127.0.0.1:0"))
  assert(byname:listen())
  sched.spawn(echo_once, byname)
  local port = byname:getsockname():match(":(%d+)$")
  print("name: localhost:" .. port .. " echoed " .. round_trip("inet", "localhost:" .. port, "hello by name"))
  byname:close()

  -- Datagrams: recvfrom says who sent, sendto answers them.
  local server = assert(xpio.socket("UDP"))
  assert(server:bind("127.0.0.1:0"))
  local client = assert(xpio.socket("UDP"))
  assert(client:bind("127.0.0.1:0"))
  assert(client:sendto("ping", server:getsockname()))
  local data, from = assert(server:recvfrom(100))
  assert(server:sendto(data:upper(), from))
  print("udp: sent ping, got back " .. assert(client:recvfrom(100)))

  -- A bounded wait: nothing comes, the read gives up.
  local ok, err = sched.timeout(0.1, function() return client:recvfrom(100) end)
  print("timeout: recvfrom gave " .. tostring(ok) .. ", " .. tostring(err))
  server:close()
  client:close()
end)

sched.run()
print("network done")
