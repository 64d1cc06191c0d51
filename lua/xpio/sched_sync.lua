--- xpio.sched's synchronisation: sched.channel, sched.semaphore and
--- sched.condition. Loaded by xpio.sched, which passes its wait machinery
--- (`core`): every wait here is a scheduler wait, so sched.timeout and
--- sched.cancel reach it, and `abort` takes the waiter off its list before
--- the task runs again. Nothing is lost when a wait ends that way: a value
--- is handed over only to a receiver that is then woken with it (a later
--- cancellation is delivered at its next wait), a sender that gave up keeps
--- its value (send returned nil, reason), and a permit goes only to a woken
--- acquirer or back to the count.
return function(sched, core)
  local suspend, wake, running = core.suspend, core.wake, core.running
  local list_push, list_remove, list_shift = core.list_push, core.list_remove, core.list_shift
  local typename = core.typename

  local function checkself(self, mt, fname)
    if getmetatable(self) ~= mt then
      error(("calling '%s' on bad self (%s expected, got %s)"):format(fname, mt.__name, typename(self)), 3)
    end
  end

  -- `level`: where the error points, 3 (the default) being the caller of
  -- the function that called this one.
  local function checkcount(v, n, fname, optional, level)
    if optional and v == nil then return end
    if math.type(v) ~= "integer" then
      error(("bad argument #%d to '%s' (number has no integer representation)"):format(n, fname), level or 3)
    elseif v < 0 then
      error(("bad argument #%d to '%s' (non-negative integer expected)"):format(n, fname), level or 3)
    end
  end

  local function integer_or_type(v, n, fname, optional)
    if optional and v == nil then return end
    if type(v) ~= "number" then
      error(("bad argument #%d to '%s' (number expected, got %s)"):format(n, fname,
        v == nil and "no value" or typename(v)), 3)
    end
    checkcount(v, n, fname, optional, 4)
  end

  -- Channels ---------------------------------------------------------------
  -- Invariants: tasks wait to receive only while the buffer is empty and no
  -- sender waits; senders wait only while the buffer is full (capacity 0:
  -- always). So a send first hands over to a receiver, a receive first
  -- drains the buffer, refilling it from the first waiting sender.

  local Channel = { __name = "xpio.sched.channel" }
  Channel.__index = Channel

  --- A channel holding up to `capacity` values (default 0: a send waits
  --- until a receiver takes its value).
  function sched.channel(capacity)
    integer_or_type(capacity, 1, "channel", true)
    return setmetatable({
      capacity = capacity or 0, first = 1, count = 0, values = {},
      receivers = {}, senders = {}, closed = false,
    }, Channel)
  end

  --- Send `value` (not nil): true once a receiver has it or the buffer
  --- holds it; nil, "closed" on a closed channel; nil, "timeout" or
  --- nil, reason when a timeout or cancellation ends the wait (not sent).
  function Channel:send(value)
    checkself(self, Channel, "send")
    if value == nil then error("bad argument #1 to 'send' (value expected)", 2) end
    if self.closed then return nil, "closed" end
    local receiver = list_shift(self.receivers)
    if receiver then
      wake(receiver.task, value)
      return true
    end
    if self.count < self.capacity then
      self.values[self.first + self.count] = value
      self.count = self.count + 1
      return true
    end
    return suspend(list_remove, list_push(self.senders, running("send"), value))
  end

  --- The next value; nil, "closed" once the channel is closed and drained;
  --- nil, "timeout" or nil, reason when a timeout or cancellation ends the
  --- wait (nothing taken).
  function Channel:receive()
    checkself(self, Channel, "receive")
    if self.count > 0 then
      local values, first = self.values, self.first
      local value = values[first]
      values[first] = nil
      self.first, self.count = first + 1, self.count - 1
      local sender = list_shift(self.senders)
      if sender then
        values[self.first + self.count] = sender.value
        self.count = self.count + 1
        wake(sender.task, true)
      end
      return value
    end
    local sender = list_shift(self.senders)
    if sender then
      wake(sender.task, true)
      return sender.value
    end
    if self.closed then return nil, "closed" end
    return suspend(list_remove, list_push(self.receivers, running("receive")))
  end

  --- Close the channel: waiting receivers and senders get nil, "closed";
  --- what the buffer holds can still be received. Returns true, or
  --- nil, "closed" when it was already closed.
  function Channel:close()
    checkself(self, Channel, "close")
    if self.closed then return nil, "closed" end
    self.closed = true
    for _, list in ipairs({ self.receivers, self.senders }) do
      while true do
        local waiter = list_shift(list)
        if not waiter then break end
        wake(waiter.task, nil, "closed")
      end
    end
    return true
  end

  -- Semaphores -------------------------------------------------------------
  -- Invariant: tasks wait only while no permit is left. A release hands its
  -- permit straight to the first waiter, so no task that came later can
  -- take it first, and a waiter that gave up never held one.

  local Semaphore = { __name = "xpio.sched.semaphore" }
  Semaphore.__index = Semaphore

  --- A counting semaphore with `n` permits.
  function sched.semaphore(n)
    integer_or_type(n, 1, "semaphore")
    return setmetatable({ permits = n, waiters = {} }, Semaphore)
  end

  --- Take a permit, waiting for one: true, or nil, "timeout" / nil, reason.
  function Semaphore:acquire()
    checkself(self, Semaphore, "acquire")
    if self.permits > 0 then
      self.permits = self.permits - 1
      return true
    end
    return suspend(list_remove, list_push(self.waiters, running("acquire")))
  end

  --- Give a permit back (to the first waiter, if any); returns true.
  function Semaphore:release()
    checkself(self, Semaphore, "release")
    local waiter = list_shift(self.waiters)
    if waiter then
      wake(waiter.task, true)
    else
      self.permits = self.permits + 1
    end
    return true
  end

  -- Conditions -------------------------------------------------------------

  local Condition = { __name = "xpio.sched.condition" }
  Condition.__index = Condition

  --- A condition variable: tasks wait until another signals.
  function sched.condition()
    return setmetatable({ waiters = {} }, Condition)
  end

  --- Wait for a signal or broadcast: true, or nil, "timeout" / nil, reason.
  function Condition:wait()
    checkself(self, Condition, "wait")
    return suspend(list_remove, list_push(self.waiters, running("wait")))
  end

  --- Wake the task that has waited longest, if any; returns true.
  function Condition:signal()
    checkself(self, Condition, "signal")
    local waiter = list_shift(self.waiters)
    if waiter then wake(waiter.task, true) end
    return true
  end

  --- Wake every waiting task; returns true.
  function Condition:broadcast()
    checkself(self, Condition, "broadcast")
    while true do
      local waiter = list_shift(self.waiters)
      if not waiter then return true end
      wake(waiter.task, true)
    end
  end
end
