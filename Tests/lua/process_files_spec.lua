-- Behavioural tests for xpio.spawn's `files` argument (issue 6): the child
-- gets exactly the descriptors named, each in blocking mode; any mapping
-- works (swaps, cycles, one source on several targets, targets above 2,
-- identity); file objects named are closed in the parent, numbers are not.
local xpio = require "xpio"
local sched = require "xpio.sched"
sched.onerror(sched.raise) -- a failing assertion in a task fails the test
local helper = require "helper"

local O_NONBLOCK = helper.O_NONBLOCK

-- Run `fn` as a task of the module's scheduler and return its results (no
-- time limit, as in process_spec.lua).
local function run(fn, ...)
  return helper.run_in_task(sched, nil, fn, ...)
end

local read_all = helper.read_all

local function pipe()
  return assert(xpio.pipe())
end

local fds_of = helper.fd_list
local fd_flags = helper.fd_flags
local wait_blocked = helper.wait_blocked

-- A bash command writing "<tag>\n" to each target descriptor in `targets`
-- (a list of { fd, tag }). bash, since dash only redirects to fds 0..9.
local function writer(targets)
  local parts = {}
  for _, t in ipairs(targets) do
    parts[#parts + 1] = string.format("echo %s >&%d", t[2], t[1])
  end
  return { "bash", "-c", table.concat(parts, "; ") }
end

local function is_closed(obj)
  return tostring(obj):find("closed", 1, true) ~= nil
end

describe("xpio.spawn files: the exact descriptor set", function()
  it("the child holds only the descriptors named in files, nothing XPIO or Lua opened elsewhere", function()
    -- Descriptors that must not reach the child: XPIO sockets, pipes, an
    -- fdopen duplicate, a task queue, another child's process object, and
    -- a plain Lua file (not close-on-exec).
    local tcp = assert(xpio.socket("TCP"))
    assert(tcp:bind("127.0.0.1:0"))
    assert(tcp:listen())
    local udp = assert(xpio.socket("UDP"))
    local sp1, sp2 = assert(xpio.socketpair())
    local other_r, other_w = pipe()
    local dup = assert(xpio.fdopen(0))
    local q = xpio.tqueue()
    local luafile = assert(io.open(os.tmpname(), "r"))
    local sleeper = assert(xpio.spawn({ "sleep", "10" }, xpio.env))

    local in_r, in_w = pipe()
    local out_r, out_w = pipe()
    local p = assert(xpio.spawn({ "cat" }, xpio.env, { [0] = in_r, [1] = out_w }))
    wait_blocked(p:pid(), "cat")
    local child_fds = fds_of(p:pid())
    assert.is_true(in_w:close())
    local out, how, code = run(function() return read_all(out_r), p:wait() end)
    sleeper:kill()
    run(function() return sleeper:wait() end)
    for _, obj in ipairs({ tcp, udp, sp1, sp2, other_r, other_w, dup }) do obj:close() end
    luafile:close()
    local _ = q

    assert.are.same({ 0, 1 }, child_fds)
    assert.are.equal("", out)
    assert.are.same({ "exit", 0 }, { how, code })
  end)

  it("the child's own listing of /proc/$$/fd shows only what it was given", function()
    run(function()
      local r, w = pipe()
      local keep_r, keep_w = pipe()
      -- ls lists the descriptors of the shell waiting for it (`; true`
      -- keeps the shell from exec'ing ls in its place).
      local p = assert(xpio.spawn({ "sh", "-c", "ls /proc/$$/fd; true" }, xpio.env, { [1] = w }))
      assert.are.equal("1\n", read_all(r))
      assert.are.same({ "exit", 0 }, { p:wait() })
      keep_r:close()
      keep_w:close()
    end)
  end)

  it("a sparse map gives exactly its targets, each in blocking mode", function()
    local in_r, in_w = pipe()
    local a_r, a_w = pipe()
    local s1, s2 = assert(xpio.socketpair())
    local n_r, n_w = pipe()
    -- Parent objects are non-blocking; the child must see blocking files.
    assert.is_true(in_r:getsockopt("O_NONBLOCK"))
    assert.is_true(s2:getsockopt("O_NONBLOCK"))
    local num = n_w:fileno()
    local p = assert(xpio.spawn({ "cat" }, xpio.env, { [0] = in_r, [1] = a_w, [5] = s2, [9] = num }))
    wait_blocked(p:pid(), "cat")
    local child_fds = fds_of(p:pid())
    local flags = {}
    for _, fd in ipairs({ 0, 1, 5, 9 }) do flags[fd] = fd_flags(fd, p:pid()) end
    in_w:close()
    local out, how, code = run(function() return read_all(a_r), p:wait() end)
    n_w:close(); n_r:close(); s1:close()

    assert.are.same({ 0, 1, 5, 9 }, child_fds)
    for _, fd in ipairs({ 0, 1, 5, 9 }) do
      assert.are.equal(0, flags[fd] & O_NONBLOCK, string.format("child fd %d is non-blocking (flags %o)", fd, flags[fd]))
    end
    assert.are.equal("", out)
    assert.are.same({ "exit", 0 }, { how, code })
  end)

  it("an empty or nil files table gives the child no descriptor at all", function()
    for _, files in ipairs({ {}, false }) do
      local p = assert(xpio.spawn({ "sleep", "10" }, xpio.env, files or nil))
      wait_blocked(p:pid(), "sleep")
      local child_fds = fds_of(p:pid())
      p:kill()
      run(function() return p:wait() end)
      assert.are.same({}, child_fds)
    end
  end)

  it("the child sees its descriptors in blocking mode (child reads its own fdinfo)", function()
    run(function()
      local r, w = pipe()
      local p = assert(xpio.spawn({ "cat", "/proc/self/fdinfo/1" }, xpio.env, { [1] = w }))
      local info = read_all(r)
      assert.are.same({ "exit", 0 }, { p:wait() })
      local flags = tonumber(assert(info:match("flags:%s*(%d+)")), 8)
      assert.are.equal(0, flags & O_NONBLOCK, string.format("flags %o", flags))
    end)
  end)
end)

describe("xpio.spawn files: mappings", function()
  it("swaps stdout and stderr: {[1] = errpipe, [2] = outpipe}", function()
    run(function()
      for _, swapped in ipairs({ false, true }) do
        local out_r, out_w = pipe()
        local err_r, err_w = pipe()
        local files = swapped and { [1] = err_w, [2] = out_w } or { [1] = out_w, [2] = err_w }
        local p = assert(xpio.spawn({ "sh", "-c", "echo to-stdout; echo to-stderr >&2" }, xpio.env, files))
        local out, err = read_all(out_r), read_all(err_r)
        assert.are.same({ "exit", 0 }, { p:wait() })
        if swapped then
          assert.are.equal("to-stderr\n", out)
          assert.are.equal("to-stdout\n", err)
        else
          assert.are.equal("to-stdout\n", out)
          assert.are.equal("to-stderr\n", err)
        end
      end
    end)
  end)

  it("swaps two descriptors whose numbers are each other's targets (objects and numbers)", function()
    run(function()
      for _, as_numbers in ipairs({ false, true }) do
        local a_r, a_w = pipe()
        local b_r, b_w = pipe()
        local A, B = a_w:fileno(), b_w:fileno()
        local files
        if as_numbers then
          files = { [A] = B, [B] = A }
        else
          files = { [A] = b_w, [B] = a_w }
        end
        local p = assert(xpio.spawn(writer({ { A, "A" }, { B, "B" } }), xpio.env, files))
        if as_numbers then
          assert.is_false(is_closed(a_w))
          a_w:close(); b_w:close()
        end
        local a, b = read_all(a_r), read_all(b_r)
        assert.are.same({ "exit", 0 }, { p:wait() })
        assert.are.equal("B\n", a, "numbers: " .. tostring(as_numbers))
        assert.are.equal("A\n", b, "numbers: " .. tostring(as_numbers))
      end
    end)
  end)

  local permutations = { { 1, 2, 3 }, { 1, 3, 2 }, { 2, 1, 3 }, { 2, 3, 1 }, { 3, 1, 2 }, { 3, 2, 1 } }

  it("maps three pipes onto 0, 1, 2 in all six permutations", function()
    run(function()
      for _, perm in ipairs(permutations) do
        local rs, ws = {}, {}
        for i = 1, 3 do rs[i], ws[i] = pipe() end
        -- child fd k (0..2) gets pipe perm[k+1]
        local files = { [0] = ws[perm[1]], [1] = ws[perm[2]], [2] = ws[perm[3]] }
        local p = assert(xpio.spawn({ "sh", "-c", "echo fd0 >&0; echo fd1 >&1; echo fd2 >&2" }, xpio.env, files))
        local got = {}
        for i = 1, 3 do got[i] = read_all(rs[i]) end
        assert.are.same({ "exit", 0 }, { p:wait() })
        for k = 0, 2 do
          assert.are.equal("fd" .. k .. "\n", got[perm[k + 1]], "permutation " .. table.concat(perm, ","))
        end
      end
    end)
  end)

  it("permutes three descriptors among their own numbers (cycles included)", function()
    run(function()
      for _, perm in ipairs(permutations) do
        local rs, ws, nums = {}, {}, {}
        for i = 1, 3 do
          rs[i], ws[i] = pipe()
          nums[i] = ws[i]:fileno()
        end
        -- child fd nums[i] gets pipe perm[i]
        local files, targets = {}, {}
        for i = 1, 3 do
          files[nums[i]] = ws[perm[i]]
          targets[i] = { nums[i], "T" .. i }
        end
        local p = assert(xpio.spawn(writer(targets), xpio.env, files))
        local got = {}
        for i = 1, 3 do got[i] = read_all(rs[i]) end
        assert.are.same({ "exit", 0 }, { p:wait() })
        for i = 1, 3 do
          assert.are.equal("T" .. i .. "\n", got[perm[i]], "permutation " .. table.concat(perm, ","))
        end
      end
    end)
  end)

  it("a source whose number is another mapping's target (a chain)", function()
    run(function()
      local a_r, a_w = pipe()
      local b_r, b_w = pipe()
      local A = a_w:fileno()
      -- child fd 1 <- a, child fd A <- b: a must be moved before b lands on A.
      local p = assert(xpio.spawn(writer({ { 1, "one" }, { A, "A" } }), xpio.env, { [1] = a_w, [A] = b_w }))
      local a, b = read_all(a_r), read_all(b_r)
      assert.are.same({ "exit", 0 }, { p:wait() })
      assert.are.equal("one\n", a)
      assert.are.equal("A\n", b)
    end)
  end)

  it("one source on several targets", function()
    run(function()
      local r, w = pipe()
      local p = assert(xpio.spawn(writer({ { 1, "one" }, { 2, "two" }, { 6, "six" }, { 12, "twelve" } }), xpio.env,
        { [1] = w, [2] = w, [6] = w, [12] = w }))
      assert.is_true(is_closed(w))
      assert.are.equal("one\ntwo\nsix\ntwelve\n", read_all(r))
      assert.are.same({ "exit", 0 }, { p:wait() })
    end)
  end)

  it("a target above 2: {[5] = w}", function()
    run(function()
      local r, w = pipe()
      local p = assert(xpio.spawn({ "sh", "-c", "echo hi >&5" }, xpio.env, { [5] = w }))
      assert.are.equal("hi\n", read_all(r))
      assert.are.same({ "exit", 0 }, { p:wait() })
    end)
  end)

  it("a target equal to its own source number (object and number)", function()
    run(function()
      for _, as_number in ipairs({ false, true }) do
        local r, w = pipe()
        local n = w:fileno()
        local p = assert(xpio.spawn(writer({ { n, "same" } }), xpio.env, { [n] = as_number and n or w }))
        if as_number then
          assert.is_false(is_closed(w))
          w:close()
        else
          assert.is_true(is_closed(w))
        end
        assert.are.equal("same\n", read_all(r), "as number: " .. tostring(as_number))
        assert.are.same({ "exit", 0 }, { p:wait() })
      end
    end)
  end)
end)

describe("xpio.spawn files: ownership in the parent", function()
  it("closes file objects given in files; they answer nil, message afterwards", function()
    run(function()
      local r, w = pipe()
      local s1, s2 = assert(xpio.socketpair())
      local p = assert(xpio.spawn({ "sh", "-c", "echo out" }, xpio.env, { [1] = w, [3] = s2 }))
      for _, obj in ipairs({ w, s2 }) do
        assert.is_true(is_closed(obj), tostring(obj))
        local ok, err = obj:write("x")
        assert.is_nil(ok)
        assert.is_string(err)
        ok, err = obj:fileno()
        assert.is_nil(ok)
        assert.is_string(err)
        ok, err = obj:try_read(1)
        assert.is_nil(ok)
        assert.is_string(err)
      end
      assert.are.equal("out\n", read_all(r))
      assert.are.same({ "exit", 0 }, { p:wait() })
      -- s2 was closed in the parent and the child has exited: s1 sees the end.
      assert.is_nil(s1:read(10))
      s1:close()
    end)
  end)

  it("leaves numbers alone", function()
    run(function()
      local r, w = pipe()
      local n = w:fileno()
      local p = assert(xpio.spawn({ "sh", "-c", "echo via-number" }, xpio.env, { [1] = n }))
      assert.is_false(is_closed(w))
      assert.are.equal(n, w:fileno())
      assert.are.same({ "exit", 0 }, { p:wait() })
      assert.is_true(w:close())
      assert.are.equal("via-number\n", read_all(r))
    end)
  end)

  it("closing an fdopen object given in files never closes the original descriptor", function()
    run(function()
      local r, w = pipe()
      local d = assert(xpio.fdopen(w:fileno()))
      local p = assert(xpio.spawn({ "sh", "-c", "echo via-dup" }, xpio.env, { [1] = d }))
      assert.is_true(is_closed(d))
      assert.is_false(is_closed(w))
      assert.is_number(w:fileno())
      assert.are.same({ "exit", 0 }, { p:wait() })
      assert.is_true(w:close())
      assert.are.equal("via-dup\n", read_all(r))
    end)
  end)

  it("a source that is not open fails with nil, message and leaves nothing behind", function()
    collectgarbage()
    collectgarbage()
    local before = helper.fd_list()
    local r, w = pipe()
    local dead_r, dead_w = pipe()
    dead_w:close()
    local p, err = xpio.spawn({ "sh", "-c", "echo should-not-run" }, xpio.env, { [1] = w, [2] = dead_w })
    assert.is_nil(p)
    assert.is_string(err)
    local open = {}
    for _, fd in ipairs(helper.fd_list()) do open[fd] = true end
    local unused = 1000
    while open[unused] do unused = unused + 1 end
    p, err = xpio.spawn({ "sh", "-c", "echo should-not-run" }, xpio.env, { [1] = 2, [2] = unused })
    assert.is_nil(p)
    assert.are.equal("Bad file descriptor", err)
    if not is_closed(w) then w:close() end
    assert.are.equal("", run(function() return read_all(r) end))
    dead_r:close()
    collectgarbage()
    collectgarbage()
    assert.are.same(before, helper.fd_list())
  end)

  it("spawning with files leaks no descriptor in the parent", function()
    collectgarbage()
    collectgarbage()
    local before = helper.fd_list()
    run(function()
      for _ = 1, 20 do
        local r, w = pipe()
        local e_r, e_w = pipe()
        local p = assert(xpio.spawn({ "sh", "-c", "echo x; echo y >&2" }, xpio.env, { [1] = w, [2] = e_w, [7] = w }))
        assert.are.equal("x\n", read_all(r))
        assert.are.equal("y\n", read_all(e_r))
        assert.are.same({ "exit", 0 }, { p:wait() })
      end
    end)
    collectgarbage()
    collectgarbage()
    assert.are.same(before, helper.fd_list())
  end)
end)
