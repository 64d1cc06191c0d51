-- http/cqueues.lua: the same 12-byte keep-alive server on cqueues, a
-- coroutine per connection reading lines (its socket:read("*l")).
local cqueues = require "cqueues"
local socket = require "cqueues.socket"

local SMALL = require("http_responses").SMALL

local cq = cqueues.new()
local server = socket.listen("127.0.0.1", 0)
server:listen()
local _, _, port = server:localname()
print(port)
io.stdout:flush()
cq:wrap(function()
  for c in server:clients() do
    cq:wrap(function()
      c:setmode("b", "bf")
      c:onerror(function(_, _, why) return why end)   -- a reset ends the connection, not the server
      while true do
        local request = c:read("*l")
        if not request then break end
        repeat
          local header = c:read("*l")
        until not header or header == "" or header == "\r"
        c:write(SMALL)
        c:flush()
      end
      c:close()
    end)
  end
end)
assert(cq:loop())
