-- Unmodified LuaSocket socket.http (Debian lua-socket) on xpio.luasocket:
-- 20 pages fetched by 20 xpio.sched tasks at once from a small HTTP server
-- of ours, on XPIO, in the same scheduler. The server holds every answer
-- until all 20 requests are in, so the test fails unless the fetches really
-- run concurrently (a blocking socket.http would wait for the first answer
-- forever; the server gives up after 30 s).
local xpio = require "xpio"
local sched = require "xpio.sched"

local PAGES = 20

-- Fresh copies of LuaSocket's Lua modules, loaded over xpio.luasocket.
local function load_http()
  for name in pairs(package.loaded) do
    if name == "socket" or name:match("^socket%.") then package.loaded[name] = nil end
  end
  require("xpio.luasocket").install()
  return require "socket.http", require "ltn12"
end

-- The server: answers GET /page/N with "page N" once `gate()` says so.
local function serve(listener, gate, stats)
  sched.spawn(function()
    while true do
      local conn = listener:accept()
      if not conn then return end
      sched.spawn(function()
        local request = conn:readline()
        repeat local header = conn:readline() until header == nil or header == ""
        stats.inflight = stats.inflight + 1
        stats.most = math.max(stats.most, stats.inflight)
        gate()
        local n = request and request:match("^GET /page/(%d+) ")
        local body = n and ("page " .. n) or "not found"
        conn:write(string.format("HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
          n and "200 OK" or "404 Not Found", #body, body))
        stats.inflight = stats.inflight - 1
        conn:close()
      end)
    end
  end)
end

describe("socket.http on xpio.luasocket", function()
  it("fetches 20 pages concurrently from tasks, every body checked", function()
    local http, ltn12 = load_http()
    local listener = assert(xpio.socket("TCP"))
    assert(listener:bind("127.0.0.1:0"))
    assert(listener:listen())
    local port = listener:getsockname():match(":(%d+)$")
    local stats = { inflight = 0, most = 0 }
    local give_up = xpio.gettime() + 30
    serve(listener, function()
      while stats.most < PAGES and xpio.gettime() < give_up do sched.sleep(0.02) end
    end, stats)

    local results = {}
    local fetchers = {}
    for i = 1, PAGES do
      fetchers[i] = sched.spawn(function()
        if i % 2 == 0 then
          results[i] = { http.request("http://127.0.0.1:" .. port .. "/page/" .. i) }
        else
          -- The generic form, with an ltn12 sink.
          local parts = {}
          local ok, code = http.request({ url = "http://127.0.0.1:" .. port .. "/page/" .. i,
                                          sink = ltn12.sink.table(parts) })
          results[i] = { ok and table.concat(parts), code }
        end
      end)
    end
    sched.spawn(function()
      for i = 1, PAGES do sched.join(fetchers[i]) end
      listener:close()
    end)
    sched.run()

    assert.are.equal(PAGES, stats.most)
    for i = 1, PAGES do
      assert.are.same({ "page " .. i, 200 }, { results[i][1], results[i][2] })
    end
  end)

  it("answers socket.http's errors: connection refused", function()
    local http = load_http()
    local s = assert(xpio.socket("TCP"))
    assert(s:bind("127.0.0.1:0"))
    local port = s:getsockname():match(":(%d+)$")
    s:close()
    local body, err
    sched.spawn(function() body, err = http.request("http://127.0.0.1:" .. port .. "/") end)
    sched.run()
    assert.is_nil(body)
    assert.are.equal("connection refused", err)
  end)
end)
