-- OOM scenario: TLS (xpio.tls). Contexts from files, a socket pair wrapped
-- as client and server, the handshake driven by the try_ forms of both
-- ends in turn, records both ways, tlsinfo and peer_certificate (tables of
-- tables the C glue builds from the engine's answers), shutdown, close.
-- The certificates come from run.sh (XPIO_OOM_TLS, made once with
-- Tests/tls/make_certs.sh); loading xpio.tls is set-up, not swept.
local xpio = require "xpio"
local tls = require "xpio.tls"
local oom = require "oomlib"
local retry, check = oom.retry, oom.check
local dir = assert(os.getenv("XPIO_OOM_TLS"), "XPIO_OOM_TLS: the certificates' directory")

--- Both ends' try_handshake in turn until both are done (a socket pair
--- carries every flight at once, so no wait is needed).
local function handshake(a, b)
  local done_a, done_b = false, false
  for _ = 1, 50 do
    if not done_a then
      local ok, err = retry(a.try_handshake, a)
      check(ok or err == "retry", "client handshake: " .. tostring(err))
      done_a = ok == true
    end
    if not done_b then
      local ok, err = retry(b.try_handshake, b)
      check(ok or err == "retry", "server handshake: " .. tostring(err))
      done_b = ok == true
    end
    if done_a and done_b then return end
  end
  check(false, "the handshake did not finish")
end

return function()
  local client = retry(tls.client, { ca = dir .. "/ca.pem", alpn = { "x-oom", "http/1.1" } })
  local server = retry(tls.server, { cert = dir .. "/leaf.pem", key = dir .. "/leaf.key", alpn = { "http/1.1" } })
  check(client and server, "contexts")
  local a, b = retry(xpio.socketpair)
  check(a and b, "socketpair")
  check(retry(tls.wrap, a, client, { host = "localhost" }) == a, "wrap the client end")
  check(retry(tls.wrap, b, server) == b, "wrap the server end")
  handshake(a, b)
  local info = retry(a.tlsinfo, a)
  check(info.verified == true and info.alpn == "http/1.1", "tlsinfo")
  local certificate = retry(a.peer_certificate, a)
  check(certificate.subject == "CN=localhost" and #certificate.san >= 1, "peer_certificate")
  local chain = retry(a.peer_certificate, a, true)
  check(#chain >= 1, "peer_certificate(true)")

  local q = retry(xpio.tqueue)
  local line = string.rep("t", 60) .. "\n"
  check(oom.complete(q, a, "try_write", "when_write", line .. line), "write")
  local got, err = oom.read(q, b, "try_readline")
  if err ~= oom.LOST then check(got == string.rep("t", 60), "readline: " .. tostring(got) .. ", " .. tostring(err)) end
  check(retry(a.try_tls_shutdown, a) == true, "tls_shutdown")
  for _, s in ipairs({ a, b }) do retry(s.close, s) end
  retry(client.close, client)
  retry(server.close, server)
end
