-- Unmodified redis-lua (Debian lua-redis, from its Lua 5.3 directory: it
-- loads under 5.4) on xpio.luasocket, against a real redis-server that each
-- test starts on a free loopback port and stops by its process.
local xpio = require "xpio"
local sched = require "xpio.sched"
local redis_server = require "redis_server"

local TASKS, OPS = 10, 1000

local function load_redis()
  for name in pairs(package.loaded) do
    if name == "socket" or name:match("^socket%.") or name == "redis" then package.loaded[name] = nil end
  end
  require("xpio.luasocket").install()
  local path = assert(package.searchpath("redis", "/usr/share/lua/5.3/?.lua;/usr/share/lua/5.4/?.lua"))
  return assert(loadfile(path))()
end

describe("redis-lua on xpio.luasocket", function()
  local server, port

  before_each(function() server, port = redis_server.start() end)
  after_each(function() redis_server.stop(server) server = nil end)

  it("runs 10 tasks x 1000 SET/GET/INCR with every value checked", function()
    local redis = load_redis()
    local done, interleaved = {}, 0
    local running = 0
    for t = 1, TASKS do
      sched.spawn(function()
        local client = redis.connect({ host = "127.0.0.1", port = port })
        running = running + 1
        for i = 1, OPS do
          local key, value = "k:" .. t .. ":" .. i, string.rep(string.char(64 + t), i % 50) .. i
          assert.is_true(client:set(key, value))
          assert.are.equal(value, client:get(key))
          assert.are.equal(i, client:incr("counter:" .. t))
          if running > 1 then interleaved = interleaved + 1 end
        end
        done[t] = client:get("counter:" .. t)
        client:quit()
        running = running - 1
      end)
    end
    sched.run()
    for t = 1, TASKS do assert.are.equal(tostring(OPS), done[t]) end
    -- The tasks ran side by side, not one after another.
    assert.is_true(interleaved > OPS, "interleaved " .. interleaved)
  end)

  it("answers 'closed' to every task when the server is killed mid-run", function()
    local redis = load_redis()
    local errors, progress = {}, 0
    for t = 1, TASKS do
      sched.spawn(function()
        local client = redis.connect({ host = "127.0.0.1", port = port })
        local ok, err = pcall(function()
          for i = 1, 1e9 do
            assert.are.equal(i, client:incr("n:" .. t))
            progress = progress + 1
          end
        end)
        assert(not ok)
        errors[t] = tostring(err)
      end)
    end
    sched.spawn(function()
      while progress < TASKS * 100 do sched.sleep(0.01) end
      server:kill("KILL")
    end)
    sched.run()
    for t = 1, TASKS do assert.matches("closed", errors[t]) end
  end)

  it("bounds a BLPOP with settimeout while other tasks go on", function()
    local redis = load_redis()
    local err, elapsed, pings = nil, nil, 0
    local blocked = true
    sched.spawn(function()
      local client = redis.connect({ host = "127.0.0.1", port = port, timeout = 0.5 })
      local t0 = xpio.gettime()
      local ok
      ok, err = pcall(client.blpop, client, "empty-list", 0)
      elapsed = xpio.gettime() - t0
      blocked = false
      assert.is_false(ok)
    end)
    sched.spawn(function()
      local client = redis.connect({ host = "127.0.0.1", port = port })
      while blocked do
        assert.are.equal(true, client:ping())
        pings = pings + 1
      end
    end)
    sched.run()
    assert.matches("timeout", tostring(err))
    assert.is_true(elapsed >= 0.45 and elapsed < 15, "elapsed " .. tostring(elapsed))
    assert.is_true(pings > 10, "pings " .. pings)
  end)

  it("works outside any task, blocking on a private queue", function()
    local redis = load_redis()
    local client = redis.connect({ host = "127.0.0.1", port = port })
    assert.is_true(client:set("plain", "value"))
    assert.are.equal("value", client:get("plain"))
    client:quit()
  end)
end)
