-- README.md's "Using LuaSocket libraries" example, run as written (only the
-- port changed) in a child interpreter against a redis-server of its own.
local helper = require "helper"
local redis_server = require "redis_server"

describe("README's redis-lua example", function()
  local server, port
  before_each(function() server, port = redis_server.start() end)
  after_each(function() redis_server.stop(server) end)

  it("runs its ten clients to the end", function()
    local f = assert(io.open(helper.ROOT .. "/README.md"))
    local readme = f:read("a")
    f:close()
    local section = assert(readme:match("\n## Using LuaSocket libraries\n(.-)\n## "), "no such section")
    local code = assert(section:match("```lua\n(.-)```"), "no example in the section")
    local replaced
    code, replaced = code:gsub("port = 6379", "port = " .. port)
    assert.are.equal(1, replaced)
    local out, ok = helper.run_lua_script(code, "ulimit -t 120")
    assert.is_true(ok, out)
    local done = {}
    for t in out:gmatch("task (%d+) done at %d+") do done[#done + 1] = tonumber(t) end
    table.sort(done)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, done)
  end)
end)
