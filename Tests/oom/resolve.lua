-- OOM scenario: names. try_resolve/when_resolve of "localhost" and of a
-- numeric host with a numeric port (answered at once), of a numeric host
-- with a service name (a worker thread's getaddrinfo), with a family, a
-- mal-formed name; connect by name. A resolve
-- interrupted by a memory error is tried again and must answer the same.
local xpio = require "xpio"
local oom = require "oomlib"
local retry, check = oom.retry, oom.check

-- try_resolve until it answers, waiting with when_resolve on `q`.
local function resolve(q, host, service, family)
  local task = { _queue = q }
  while true do
    local list, err = retry(xpio.try_resolve, host, service, family)
    if err ~= "retry" then return list, err end
    assert(oom.retry_checked(function()
      check(not oom.scheduled(task), "when_resolve failed and left its task scheduled")
    end, xpio.when_resolve, task, host, service, family))
    oom.wait_for(q, task)
  end
end

return function()
  local q = retry(xpio.tqueue)
  local list = assert(resolve(q, "localhost", "80"))
  check(#list == 2 and list[1] == "[::1]:80" and list[2] == "127.0.0.1:80", "localhost: " .. table.concat(list, " "))
  list = assert(resolve(q, "localhost", "https", "inet"))
  check(#list == 1 and list[1] == "127.0.0.1:443", "localhost https inet")
  list = assert(resolve(q, "127.0.0.1", "8080"))
  check(list[1] == "127.0.0.1:8080", "numeric host: " .. tostring(list[1]))
  list = assert(resolve(q, "127.0.0.1", "http"))
  check(list[1] == "127.0.0.1:80", "numeric host, service name: " .. tostring(list[1]))
  list = assert(resolve(q, "::1", nil, "inet6"))
  check(list[1] == "[::1]:0", "numeric inet6 host: " .. tostring(list[1]))
  local none, err = resolve(q, "bad..name", "80")
  check(none == nil and err == "xpio: mal-formed host name", "mal-formed: " .. tostring(err))

  -- connect by name
  local server = assert(retry(xpio.socket, "TCP"))
  assert(retry(server.bind, server, "127.0.0.1:0"))
  assert(retry(server.listen, server))
  local port = retry(server.getsockname, server):match(":(%d+)$")
  local client = assert(retry(xpio.socket, "TCP"))
  local ok, cerr = oom.complete(q, client, "try_connect", "when_write", "localhost:" .. port)
  check(ok == true, "connect by name: " .. tostring(cerr))
  retry(client.close, client)
  retry(server.close, server)
  retry(q.close, q)
end
