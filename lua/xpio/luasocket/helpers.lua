--- xpio.luasocket.helpers: LuaSocket's exception helpers and LTN12 sinks and
--- sources, as `socket.http`, `socket.smtp` and `ltn12` users call them.
--
-- LuaSocket implements `newtry`/`protect` in C (except.c) and the rest in
-- socket.lua; these are the same contracts in plain Lua (5.4's pcall is
-- yieldable, so a protected function may block in an xpio.sched task).
return function(socket)
  -- A `try` error is a table with this private metatable, so `protect`
  -- answers nil, message for it and re-raises every other error.
  local wrapped = {}

  local function finish_protect(ok, ...)
    if ok then return ... end
    local err = ...
    if type(err) == "table" and getmetatable(err) == wrapped then return nil, err[1] end
    error(err, 0)
  end

  function socket.protect(f)
    return function(...) return finish_protect(pcall(f, ...)) end
  end

  function socket.newtry(finalizer)
    return function(...)
      local ok, err = ...
      if ok then return ... end
      if finalizer then pcall(finalizer) end
      error(setmetatable({ err }, wrapped), 0)
    end
  end

  socket.try = socket.newtry()

  function socket.skip(d, ...) return select(d + 1, ...) end

  function socket.choose(tbl)
    return function(name, opt1, opt2)
      if type(name) ~= "string" then name, opt1, opt2 = "default", name, opt1 end
      local f = tbl[name or "nil"]
      if not f then error("unknown key (" .. tostring(name) .. ")", 3) end
      return f(opt1, opt2)
    end
  end

  socket.BLOCKSIZE = 2048

  local sinkt, sourcet = {}, {}
  socket.sinkt, socket.sourcet = sinkt, sourcet

  -- Sinks and sources keep getfd and dirty, so socket.select can take them.
  local function wrap(sock, call)
    return setmetatable({
      getfd = function() return sock:getfd() end,
      dirty = function() return sock:dirty() end,
    }, { __call = call })
  end

  sinkt["close-when-done"] = function(sock)
    return wrap(sock, function(_, chunk)
      if not chunk then sock:close() return 1 end
      return sock:send(chunk)
    end)
  end

  sinkt["keep-open"] = function(sock)
    return wrap(sock, function(_, chunk)
      if chunk then return sock:send(chunk) end
      return 1
    end)
  end

  sinkt["default"] = sinkt["keep-open"]
  socket.sink = socket.choose(sinkt)

  sourcet["by-length"] = function(sock, length)
    return wrap(sock, function()
      if length <= 0 then return nil end
      local chunk, err = sock:receive(math.min(socket.BLOCKSIZE, length))
      if err then return nil, err end
      length = length - #chunk
      return chunk
    end)
  end

  sourcet["until-closed"] = function(sock)
    local done
    return wrap(sock, function()
      if done then return nil end
      local chunk, err, partial = sock:receive(socket.BLOCKSIZE)
      if not err then return chunk end
      if err == "closed" then
        sock:close()
        done = true
        return partial
      end
      return nil, err
    end)
  end

  sourcet["default"] = sourcet["until-closed"]
  socket.source = socket.choose(sourcet)
end
