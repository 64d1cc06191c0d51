-- Behavioural tests for XPIO's address format (issue 4): "a.b.c.d:port",
-- its accepted variations, and every mal-formed form. Contract: the address
-- format in the socket object's doc, Spec/socket.spec (docs/API.md).
local xpio = require "xpio"
local sched = require "xpio.sched"
sched.onerror(sched.raise) -- a failing assertion in a task fails the test
local helper = require "helper"

local MALFORMED = "xpio: mal-formed address"

local poll = helper.poll

--- A port on 127.0.0.1 that was free a moment ago.
local function free_port()
  return tonumber(helper.unused_address():match(":(%d+)$"))
end

local malformed = {
  ["octets over 255"] = {
    "256.0.0.1:0", "127.0.0.256", "127.0.0.256:0", "127.0.300.1:0", "127.1000.0.1:0",
    "999.999.999.999:0", "1.2.3.99999999999999999999:0", "127.0.0.4294967297:0",
  },
  ["ports over 65535"] = {
    "127.0.0.1:65536", "127.0.0.1:99999", ":65536", "127.0.0.1:4294967296",
    "127.0.0.1:4294967297", "127.0.0.1:18446744073709551617", "127.0.0.1:99999999999999999999999",
  },
  ["single numbers over 32 bits"] = {
    "4294967296:0", "4294967296", "18446744073709551616:0", "99999999999999999999999:0",
  },
  ["more than four parts"] = {
    "1.2.3.4.5:0", "1.2.3.4.5", "127.0.0.1.0:80", "1.1.1.1.1.1.1.1:0",
  },
  ["two or three parts"] = {
    "1.2:0", "1.2.3:0", "127.1:0", "127.0.1", "10.1",
  },
  ["empty parts"] = {
    "127..0.1:0", "127.0.0.:0", ".127.0.0.1:0", "127.0.0.1.:0", "...:0", ".:0", ".",
  },
  ["stray characters"] = {
    "127.0.0.1:80x", "localhost", "0x7f000001:0", "127.0.0.1:0x50", "1e3:0", "127.0.0.1x:0", "a..b:0",
    "-a:0", "a-:0", "example.org.:80", "a.b:", "a.b:htt p", "a_b:80", "[::1", "::1", "[::1]80", "[::1]:x",
    "127.0.0.1/8:0", "127.0.0.1\0:0", "127.0.0.1:0\0", "1e3:0", "127,0,0,1:0", "127.0.0.1:80:",
    "127.0.0.1:0:0", ":0:", "x", "127.0.0.1:1.5", "\xff",
  },
  ["spaces"] = {
    " 127.0.0.1:0", "127.0.0.1 :0", "127.0.0.1: 0", "127.0.0.1:0 ", "127. 0.0.1:0", "\t127.0.0.1",
    "127.0.0.1\n", " ", " :0", ": 0",
  },
  ["signs"] = {
    "+127.0.0.1:0", "-1:0", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.-1:0", "+2130706433:0",
    "127.0.+0.1:0", ":-0", "-0:0",
  },
  ["double colons"] = {
    "127.0.0.1::0", "::", "::1", "::0", "127.0.0.1::", "::80",
  },
}

local categories = {}
for name in pairs(malformed) do categories[#categories + 1] = name end
table.sort(categories)

describe("mal-formed addresses", function()
  for _, category in ipairs(categories) do
    local forms = malformed[category]

    it("are refused by bind: " .. category, function()
      for _, kind in ipairs({ "TCP", "UDP" }) do
        local s = assert(xpio.socket(kind))
        for _, form in ipairs(forms) do
          local ok, err = s:bind(form)
          assert.is_nil(ok, ("%s bind(%q) succeeded"):format(kind, form))
          assert.are.equal(MALFORMED, err, ("%s bind(%q)"):format(kind, form))
        end
        -- the refusals did not bind the socket
        assert.are.equal("0.0.0.0:0", s:getsockname())
        s:close()
      end
    end)

    it("are refused by try_connect: " .. category, function()
      for _, kind in ipairs({ "TCP", "UDP" }) do
        local s = assert(xpio.socket(kind))
        for _, form in ipairs(forms) do
          local ok, err = s:try_connect(form)
          assert.is_nil(ok, ("%s try_connect(%q) succeeded"):format(kind, form))
          assert.are.equal(MALFORMED, err, ("%s try_connect(%q)"):format(kind, form))
        end
        s:close()
      end
    end)
  end

  it("are refused by the blocking connect", function()
    local failures = {}
    helper.run_in_task(sched, nil, function()
      local s = assert(xpio.socket("TCP"))
      for _, category in ipairs(categories) do
        for _, form in ipairs(malformed[category]) do
          local ok, err = s:connect(form)
          if ok ~= nil or err ~= MALFORMED then
            failures[#failures + 1] = ("connect(%q) gave %s, %s"):format(form, tostring(ok), tostring(err))
          end
        end
      end
      s:close()
    end)
    assert.are.same({}, failures)
  end)
end)

describe("accepted address forms", function()
  it("\"127.0.0.1\" and \"127.0.0.1:\" bind to a port picked by the system", function()
    for _, form in ipairs({ "127.0.0.1", "127.0.0.1:", "127.0.0.1:0" }) do
      for _, kind in ipairs({ "TCP", "UDP" }) do
        local s = assert(xpio.socket(kind))
        assert.is_true(s:bind(form), ("%s bind(%q)"):format(kind, form))
        local address = s:getsockname()
        local port = tonumber(address:match("^127%.0%.0%.1:(%d+)$"))
        assert.is_truthy(port, ("bind(%q) gave %s"):format(form, address))
        assert.is_true(port > 0 and port <= 65535)
        s:close()
      end
    end
  end)

  it("an empty IP address means 0.0.0.0", function()
    for _, form in ipairs({ ":0", "", ":", "0:", "0", "0:0", "0.0.0.0", "0.0.0.0:", "0.0.0.0:0" }) do
      local s = assert(xpio.socket("UDP"))
      assert.is_true(s:bind(form), ("bind(%q)"):format(form))
      local address = s:getsockname()
      local port = tonumber(address:match("^0%.0%.0%.0:(%d+)$"))
      assert.is_truthy(port, ("bind(%q) gave %s"):format(form, address))
      assert.is_true(port > 0)
      s:close()
    end
  end)

  it("the IP address may be a single number", function()
    for _, form in ipairs({ "2130706433:0", "2130706433", "2130706433:" }) do
      local s = assert(xpio.socket("TCP"))
      assert.is_true(s:bind(form), ("bind(%q)"):format(form))
      assert.truthy(s:getsockname():match("^127%.0%.0%.1:%d+$"), ("bind(%q) gave %s"):format(form, s:getsockname()))
      s:close()
    end
  end)

  it("an explicit port is kept and shown in decimal", function()
    local port = free_port()
    local cases = {
      { "127.0.0.1:" .. port, "127.0.0.1:" .. port },
      { "2130706433:" .. port, "127.0.0.1:" .. port },
      { ":" .. port, "0.0.0.0:" .. port },
    }
    for _, case in ipairs(cases) do
      local s = assert(xpio.socket("UDP"))
      assert.is_true(s:bind(case[1]), ("bind(%q)"):format(case[1]))
      assert.are.equal(case[2], s:getsockname())
      s:close()
    end
  end)

  it("a connection to a single-number address reports the peer in dotted form", function()
    local listener = assert(xpio.socket("TCP"))
    assert(listener:bind("127.0.0.1"))
    assert(listener:listen())
    local port = listener:getsockname():match(":(%d+)$")
    local client = assert(xpio.socket("TCP"))
    assert.is_true(poll(client.try_connect, client, "2130706433:" .. port))
    assert.are.equal("127.0.0.1:" .. port, client:getpeername())
    local server = assert(poll(listener.try_accept, listener))
    assert.are.equal(client:getsockname(), server:getpeername())
    assert.truthy(server:getpeername():match("^127%.0%.0%.1:%d+$"))
    server:close()
    client:close()
    listener:close()
  end)

  it("octets are decimal, even with leading zeros", function()
    for _, form in ipairs({ "127.0.0.010", "127.000.000.010:", "0127.0.0.10:0" }) do
      local s = assert(xpio.socket("UDP"))
      assert.is_true(s:bind(form), ("bind(%q)"):format(form))
      assert.truthy(s:getsockname():match("^127%.0%.0%.10:%d+$"), s:getsockname())
      s:close()
    end
  end)

  it("ports and single-number addresses are decimal, whatever the number of leading zeros", function()
    local port = free_port()
    local cases = {
      { ("127.0.0.1:%05d"):format(port), "127.0.0.1:" .. port },
      { ("127.0.0.1:%07d"):format(port), "127.0.0.1:" .. port },
      { ("02130706433:%d"):format(port), "127.0.0.1:" .. port },
    }
    for _, case in ipairs(cases) do
      local s = assert(xpio.socket("UDP"))
      local ok, err = s:bind(case[1])
      assert.is_true(ok, ("bind(%q) gave %s"):format(case[1], tostring(err)))
      assert.are.equal(case[2], s:getsockname())
      s:close()
    end
  end)

  it("boundary values are well-formed", function()
    -- 255 octets and port 65535 parse; the system may still refuse the bind,
    -- but not as a mal-formed address
    for _, form in ipairs({ "127.255.255.255:0", "127.0.0.1:65535", "4294967295:0", "127.0.0.255" }) do
      local s = assert(xpio.socket("UDP"))
      local ok, err = s:bind(form)
      assert.is_true(ok == true or (ok == nil and err ~= MALFORMED), ("bind(%q) gave %s"):format(form, tostring(err)))
      s:close()
    end
  end)

  it("a UDP socket can be connected to every accepted form", function()
    local target = assert(xpio.socket("UDP"))
    assert(target:bind("127.0.0.1"))
    local port = target:getsockname():match(":(%d+)$")
    for _, form in ipairs({ "127.0.0.1:" .. port, "2130706433:" .. port }) do
      local s = assert(xpio.socket("UDP"))
      assert.is_true(poll(s.try_connect, s, form), ("try_connect(%q)"):format(form))
      assert.are.equal("127.0.0.1:" .. port, s:getpeername())
      assert.are.equal(2, s:try_write("hi"))
      assert.are.equal("hi", poll(target.try_read, target, 10))
      s:close()
    end
    target:close()
  end)
end)
