-- The TLS tests' fixtures on the Lua side (Tests/lua/tls_spec.lua): the
-- certificates of Tests/tls/make_certs.sh, and the peers the tests talk
-- to, Python's ssl (Tests/tls/peer.py) and the openssl CLI, started with
-- xpio.spawn so each one is stopped by its process object. Nothing here
-- needs xpio.tls: it is plain XPIO, and works (and was checked) before the
-- TLS module exists.
local xpio = require "xpio"
local helper = require "helper"

local fixtures = {}

fixtures.PYTHON = os.getenv("PYTHON") or "python3"
fixtures.PEER = helper.ROOT .. "/Tests/tls/peer.py"
fixtures.MAKE_CERTS = helper.ROOT .. "/Tests/tls/make_certs.sh"
fixtures.LIMIT = 20   -- seconds any one wait for a peer may take (a loaded 2-core machine)

--- Makes a fresh set of certificates in a new temporary directory; returns
--- the directory. `fixtures.remove_certs` removes it.
function fixtures.make_certs()
  local base = os.tmpname()
  os.remove(base)
  local dir = base .. "-xpio-tls"
  local output, ok = helper.run_command("sh " .. helper.shell_quote(fixtures.MAKE_CERTS) .. " " .. helper.shell_quote(dir))
  assert(ok, "make_certs.sh failed: " .. output)
  return dir
end

function fixtures.remove_certs(dir)
  assert(dir:match("%-xpio%-tls$"), dir)
  os.execute("rm -rf " .. helper.shell_quote(dir))
end

--- The value of one JSON line of peer.py: a flat object of strings,
--- numbers, booleans and nulls (a null field is absent). Strings keep
--- peer.py's latin-1 bytes (\u00XX becomes that byte).
function fixtures.decode(line)
  local t = {}
  local i = assert(line:find("{", 1, true), "not a JSON object: " .. line) + 1
  local escapes = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f" }
  while true do
    i = assert(line:find("[^%s,]", i), "unterminated JSON object: " .. line)
    if line:sub(i, i) == "}" then return t end
    local key, j = line:match('^"([^"]*)"%s*:%s*()', i)
    assert(key, "bad JSON at " .. i .. ": " .. line)
    if line:sub(j, j) == '"' then
      local buf, k = {}, j + 1
      while true do
        local c = line:sub(k, k)
        assert(c ~= "", "unterminated JSON string: " .. line)
        if c == '"' then break end
        if c == "\\" then
          local e = line:sub(k + 1, k + 1)
          if e == "u" then
            local code = tonumber(line:sub(k + 2, k + 5), 16)
            buf[#buf + 1] = code < 256 and string.char(code) or utf8.char(code)
            k = k + 6
          else
            buf[#buf + 1] = escapes[e] or e
            k = k + 2
          end
        else
          buf[#buf + 1] = c
          k = k + 1
        end
      end
      t[key] = table.concat(buf)
      i = k + 1
    else
      local word, k = line:match("^([^,}%s]+)()", j)
      if word == "true" then t[key] = true
      elseif word == "false" then t[key] = false
      elseif word ~= "null" then t[key] = assert(tonumber(word), "bad JSON value: " .. line)
      end
      i = k
    end
  end
end

--- Children started by `fixtures.start`, stopped by `fixtures.stop_all`
--- (the spec calls it after each test, whatever happened).
local started = {}

--- Starts `args` with xpio.spawn, its stdout on a pipe; returns a peer
--- table: `proc`, `out` (the pipe's read end), `stdin` (the write end of
--- a pipe on its stdin when `opts.stdin` is true; else /dev/null), and
--- methods. `opts.stderr`: where its stderr goes ("null" by default, 2 to
--- see it).
function fixtures.start(args, opts)
  opts = opts or {}
  local r, w = assert(xpio.pipe())
  local files = { [0] = "null", [1] = w, [2] = opts.stderr or "null" }
  local stdin
  if opts.stdin then
    local ir
    ir, stdin = assert(xpio.pipe())
    files[0] = ir
  end
  local proc = assert(xpio.spawn(args, xpio.env, files))
  local peer = setmetatable({ proc = proc, out = r, stdin = stdin, args = args }, { __index = fixtures.peer_methods })
  started[#started + 1] = peer
  return peer
end

fixtures.peer_methods = {}
local peer_methods = fixtures.peer_methods

--- The next line the peer writes (in a task of `sched`), waiting at most
--- `limit` seconds (default fixtures.LIMIT); raises on a timeout or the
--- end of its output.
function peer_methods:line(sched, limit)
  local line, err = sched.timeout(limit or fixtures.LIMIT, self.out.readline, self.out)
  if not line then error(("%s said nothing more: %s"):format(self.args[3] or self.args[1], tostring(err)), 2) end
  return line
end

--- The next JSON event of peer.py, decoded.
function peer_methods:event(sched, limit)
  return fixtures.decode(self:line(sched, limit))
end

-- The events that end a step of a connection: waiting for one of them,
-- another one of them is a failure at once; other events are skipped.
local CONCLUSIVE = { handshake = true, handshake_error = true, eof = true, received = true, error = true,
                     listening = true, holding = true, plain = true, request = true }

--- The next event named `name` (in a task of `sched`), skipping events of
--- earlier steps ("sent", "unwrap_error" and such, from a connection the
--- test is done with); another conclusive event (a "handshake_error" where
--- a "handshake" was wanted) fails at once, naming what came.
function peer_methods:expect(sched, name, limit)
  while true do
    local e = self:event(sched, limit)
    if e.event == name then return e end
    if CONCLUSIVE[e.event] then
      local fields = {}
      for k, v in pairs(e) do fields[#fields + 1] = k .. "=" .. tostring(v) end
      table.sort(fields)
      error(("expected a %q event from the peer, got { %s }"):format(name, table.concat(fields, ", ")), 2)
    end
  end
end

--- Stops the peer now (SIGKILL) and waits for it (in a task); returns how
--- it ended, as process:wait does.
function peer_methods:kill(sched)
  self.proc:kill(9)
  local how, code = sched.timeout(fixtures.LIMIT, self.proc.wait, self.proc)
  return how, code
end

--- Waits (in a task) for the peer to end by itself; returns how it ended.
function peer_methods:wait(sched, limit)
  return sched.timeout(limit or fixtures.LIMIT, self.proc.wait, self.proc)
end

--- Everything the peer writes to its stdout until it ends (in a task).
function peer_methods:output(sched, limit)
  return sched.timeout(limit or fixtures.LIMIT, self.out.readall, self.out)
end

--- Kills and lets go of every child `start` started (reaped by XPIO when
--- they end), and closes their pipes. Needs no task: it never blocks.
function fixtures.stop_all()
  for i = #started, 1, -1 do
    local peer = started[i]
    started[i] = nil
    peer.proc:kill(9)
    peer.proc:close()
    peer.out:close()
    if peer.stdin then peer.stdin:close() end
  end
end

--- A peer.py server (in a task of `sched`) with the certificate `name` of
--- `certs` and the extra arguments `extra` (an array); returns the peer,
--- its port and its address on 127.0.0.1 (or [::1] with "--bind", "::1").
function fixtures.peer_server(sched, certs, name, extra)
  local args = { fixtures.PYTHON, fixtures.PEER, "server", "--cert", certs .. "/" .. name .. ".pem",
                 "--key", certs .. "/" .. name .. ".key", "--lifetime", "300", "--timeout", "60" }
  local ipv6 = false
  for i, a in ipairs(extra or {}) do
    args[#args + 1] = a
    if a == "--bind" and (extra[i + 1] or ""):find(":", 1, true) then ipv6 = true end
  end
  local peer = fixtures.start(args, { stderr = 2 })
  local first = peer:expect(sched, "listening")
  peer.port = assert(first.port)
  peer.addr = (ipv6 and "[::1]:" or "127.0.0.1:") .. first.port
  return peer, peer.port, peer.addr
end

--- A peer.py client (no task needed to start it) with `extra` arguments.
function fixtures.peer_client(certs, addr, extra)
  local args = { fixtures.PYTHON, fixtures.PEER, "client", "--connect", addr, "--ca", certs .. "/ca.pem",
                 "--timeout", "60", "--lifetime", "120" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return fixtures.start(args, { stderr = 2 })
end

--- An `openssl s_server` (in a task of `sched`) on a port of its choice
--- with the certificate `name` (cert file `cert_file` if given) and the
--- extra arguments; returns the peer, its port and its address. Its stdin
--- is a pipe kept open (s_server reads it), its stderr goes to /dev/null.
function fixtures.s_server(sched, certs, name, extra, cert_file)
  local args = { "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert_file or (certs .. "/" .. name .. ".pem"),
                 "-key", certs .. "/" .. name .. ".key" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  local peer = fixtures.start(args, { stdin = true })
  while true do
    local line = peer:line(sched)
    local port = line:match("^ACCEPT .*:(%d+)%s*$")
    if port then
      peer.port = tonumber(port)
      peer.addr = "127.0.0.1:" .. port
      return peer, peer.port, peer.addr
    end
  end
end

--- An `openssl s_client` connecting to `addr`, checking the server as a
--- strict client does (the CA of `certs`, the name localhost), with the
--- extra arguments; its stdin is a pipe (peer.stdin), its stdout the
--- peer's output.
function fixtures.s_client(certs, addr, extra)
  local args = { "openssl", "s_client", "-connect", addr, "-servername", "localhost", "-CAfile", certs .. "/ca.pem",
                 "-verify_return_error", "-verify_hostname", "localhost", "-quiet" }
  for _, a in ipairs(extra or {}) do args[#args + 1] = a end
  return fixtures.start(args, { stdin = true })
end

--- What openssl says of the certificate file `path` (`openssl x509
--- -noout ARG`): the text after "=" of its one line.
function fixtures.x509(path, arg)
  local output, ok = helper.run_command("openssl x509 -noout " .. arg .. " -in " .. helper.shell_quote(path))
  assert(ok, output)
  return (output:match("=%s*(.-)%s*$"))
end

--- The base64 body of the first certificate of PEM text, without line breaks.
function fixtures.pem_body(text)
  local body = text:match("%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-(.-)%-%-%-%-%-END CERTIFICATE%-%-%-%-%-")
  return body and (body:gsub("%s", ""))
end

function fixtures.read_file(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

--- `n` bytes of 0, 1, ..., 255, 0, 1, ...: peer.py's bytes:N and its
--- expectations of an echo.
function fixtures.pattern(n)
  local block = {}
  for i = 0, 255 do block[#block + 1] = string.char(i) end
  block = table.concat(block)
  return string.rep(block, n // 256 + 1):sub(1, n)
end

--- Line `i` (from 1) of peer.py's lines:N action, without its newline.
function fixtures.line_text(i)
  if i % 50 == 0 then return ("line %d %s"):format(i, string.rep("L", 20000 + i)) end
  return ("line %d %s"):format(i, string.rep("x", i % 97))
end

package.loaded["tls_fixtures"] = fixtures
return fixtures
