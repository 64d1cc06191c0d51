-- LuaSec (Debian lua-sec), unmodified, over a socket XPIO connected and then
-- handed over: ssl.wrap calls getfd and setfd(-1), which xpio.luasocket
-- turns into socket:detach. The peer is `openssl s_server -rev` (it answers
-- each line reversed) on a free loopback port, with a throwaway CA made for
-- the test (EC P-256, like Tests/tls/make_certs.sh), stopped by its process.
local xpio = require "xpio"
local sched = require "xpio.sched"
local helper = require "helper"

local ssl_loaded, ssl = pcall(require, "ssl")

local function sh(command)
  local output, ok = helper.run_command(command)
  assert(ok, output)
end

-- A CA and a leaf for localhost/127.0.0.1 in a fresh directory.
local function make_certificates()
  local dir = os.tmpname()
  os.remove(dir)
  sh("mkdir " .. dir)
  local q = helper.shell_quote
  sh("cd " .. q(dir) .. " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    .. " -keyout ca.key -out ca.pem -days 30 -subj '/CN=XPIO Test CA'"
    .. " -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'"
    .. " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr"
    .. " -subj '/CN=localhost'"
    .. " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > leaf.ext"
    .. " && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30"
    .. " -extfile leaf.ext -out leaf.pem")
  return dir
end

local function free_port()
  local s = assert(xpio.socket("TCP"))
  assert(s:bind("127.0.0.1:0"))
  local port = tonumber(s:getsockname():match(":(%d+)$"))
  s:close()
  return port
end

-- Runs fn in a task to its end (the suite's calls yield there).
local function in_task(fn)
  local results
  sched.spawn(function() results = table.pack(fn()) end)
  sched.run()
  return table.unpack(results, 1, results.n)
end

local function start_server(dir)
  local port = free_port()
  local server = assert(xpio.spawn({ "openssl", "s_server", "-quiet", "-rev", "-accept", "127.0.0.1:" .. port,
    "-cert", dir .. "/leaf.pem", "-key", dir .. "/leaf.key" }, xpio.env, { [0] = "null", [1] = "null", [2] = "null" }))
  local deadline = xpio.gettime() + 30
  while not in_task(function()
    local s = assert(xpio.socket("TCP"))
    local ok = s:connect("127.0.0.1:" .. port)
    s:close()
    return ok
  end) do
    assert(xpio.gettime() < deadline, "openssl s_server did not start in 30 s")
    in_task(function() sched.sleep(0.05) end)
  end
  return server, port
end

describe("LuaSec over a socket XPIO handed over", function()
  if not ssl_loaded then
    it("loads LuaSec", function() error(ssl) end)
    return
  end

  local dir, server, port
  local socket = require "xpio.luasocket"

  setup(function()
    dir = make_certificates()
  end)
  teardown(function()
    if dir then os.execute("rm -rf " .. helper.shell_quote(dir)) end
  end)
  before_each(function() server, port = start_server(dir) end)
  after_each(function()
    server:kill()
    in_task(function() server:wait() end)
    server:close()
  end)

  local function params()
    return { mode = "client", protocol = "any", verify = "peer", options = "all", cafile = dir .. "/ca.pem" }
  end

  it("shakes hands and exchanges lines after ssl.wrap (getfd, setfd(-1) = detach)", function()
    local tcp = socket.tcp()
    assert(in_task(function() return tcp:connect("127.0.0.1", port) end))
    local xs = tcp:xpio()
    local fd = tcp:getfd()
    local conn = assert(ssl.wrap(tcp, params()))
    -- XPIO gave the descriptor up: its object reads as closed, the number lives on in LuaSec.
    assert.are.same({ nil, "xpio: socket is closed" }, { xs:fileno() })
    assert.are.equal(-1, tcp:getfd())
    assert.are.equal(fd, conn:getfd())
    conn:sni("localhost")
    conn:settimeout(30)
    assert(conn:dohandshake())
    assert(conn:send("hello xpio\n"))
    assert.are.equal("oipx olleh", conn:receive("*l"))
    conn:close()
  end)

  it("runs its handshake inside a task, waiting with socket:wait on a duplicate", function()
    local tcp = socket.tcp()
    assert(in_task(function() return tcp:connect("127.0.0.1", port) end))
    local conn = assert(ssl.wrap(tcp, params()))
    conn:sni("localhost")
    conn:settimeout(0)   -- LuaSec answers "wantread"/"wantwrite"; XPIO waits
    local watch = assert(xpio.fdopen(conn:getfd()))
    local ticks, done = 0, false
    sched.spawn(function()
      while not done do
        ticks = ticks + 1
        sched.sleep(0.001)
      end
    end)
    local reply
    sched.spawn(function()
      local function step(ok, err, ...)
        if ok then return ok, err, ... end
        if err == "wantread" or err == "timeout" then assert(watch:wait("r"))
        elseif err == "wantwrite" then assert(watch:wait("w"))
        else error(err) end
        return nil
      end
      while not step(conn:dohandshake()) do end
      assert(conn:send("in a task\n"))
      while not reply do reply = step(conn:receive("*l")) end
      done = true
    end)
    sched.run()
    watch:close()
    conn:close()
    assert.are.equal("ksat a ni", reply)
    assert.is_true(ticks > 0)
  end)
end)
