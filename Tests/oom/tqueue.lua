-- OOM scenario: a task queue with many ready tasks. 64 tasks wait to
-- write on 8 socket pairs (writable at once, 8 tasks per socket), one task
-- waits to read a silent socket. Every when_ and wait is retried after a
-- memory error, and checked: a failed when_ leaves its task unscheduled; a
-- failed wait leaves every task it did not return scheduled, and the next
-- wait returns them, each exactly once, never the silent one. Then dequeue,
-- isEmpty, close and collection with tasks on the queue.
local xpio = require "xpio"
local oom = require "oomlib"
local retry, check, scheduled = oom.retry, oom.check, oom.scheduled

return function()
  local q = retry(xpio.tqueue)
  local sockets = {}
  for i = 1, 8 do
    local a, b = retry(xpio.socketpair)
    assert(a and b, "socketpair")
    sockets[i] = { a, b }
  end

  local function schedule(task, socket, when)
    local function unscheduled() check(not scheduled(task), when .. " failed and left its task scheduled") end
    assert(oom.retry_checked(unscheduled, socket[when], socket, task))
    check(scheduled(task), when .. " did not schedule")
  end

  local tasks, returned = {}, {}
  for i = 1, 64 do
    tasks[i] = { _queue = q, id = i }
    schedule(tasks[i], sockets[(i - 1) % 8 + 1][1], "when_write")
  end
  local silent = { _queue = q, id = "silent" }
  schedule(silent, sockets[1][2], "when_read")
  check(retry(q.isEmpty, q) == false, "isEmpty with tasks")

  -- After a failed wait: nothing it did not return has left the queue.
  local late -- scheduled once, after the first failed wait (below)
  local function still_scheduled()
    for i = 1, 64 do
      check(returned[i] or scheduled(tasks[i]), "a failed wait unscheduled task " .. i)
    end
    check(scheduled(silent), "a failed wait unscheduled the silent task")
    if not late then
      -- The program goes on between the failed wait and the next: it drops
      -- a ready task and schedules another, on a socket with nothing to read.
      -- The next wait must return neither.
      late = { _queue = q, id = "late" }
      local first = tasks[1]
      if not returned[1] then
        check(first:_dequeue() == true, "_dequeue of a ready task")
        returned[1] = "dequeued"
      end
      schedule(late, sockets[2][2], "when_read")
    end
  end

  local count = 0
  local deadline = xpio.gettime() + 5
  while count < 64 do
    local ready = oom.retry_checked(still_scheduled, q.wait, q, 1)
    check(type(ready) == "table", "wait: " .. tostring(ready))
    for _, task in ipairs(ready) do
      check(not scheduled(task), "a returned task is still scheduled")
      check(task ~= silent, "wait returned the silent task")
      check(task ~= late, "wait returned a task whose socket is not ready")
      check(not returned[task.id], "task " .. tostring(task.id) .. " returned twice")
      returned[task.id] = true
    end
    count = 0
    for i = 1, 64 do if returned[i] then count = count + 1 end end
    check(xpio.gettime() < deadline, "timed out: " .. count .. " of 64 tasks returned")
  end

  -- The silent task (and the late one) are still there; dequeue them and the
  -- queue is empty.
  check(scheduled(silent), "the silent task left the queue")
  check(silent:_dequeue() == true, "_dequeue")
  if late then
    check(scheduled(late), "the late task left the queue")
    check(late:_dequeue() == true, "_dequeue of the late task")
  end
  check(retry(q.isEmpty, q) == true, "isEmpty after every task left")
  check(#retry(q.wait, q, 0) == 0, "wait(0) on an empty queue")

  -- Tasks still scheduled when the queue is closed, or collected.
  local left = {}
  for i = 1, 16 do
    left[i] = { _queue = q }
    schedule(left[i], sockets[(i - 1) % 8 + 1][2], "when_read")
  end
  assert(retry(q.close, q))
  for i = 1, 16 do check(not scheduled(left[i]), "close left a task scheduled") end
  local q2 = retry(xpio.tqueue)
  for i = 1, 16 do
    left[i]._queue = q2
    schedule(left[i], sockets[(i - 1) % 8 + 1][1], "when_write")
  end
  left, q2 = nil, nil -- luacheck: ignore (the queue and its tasks, for the collector)
  collectgarbage()
  for _, pair in ipairs(sockets) do retry(pair[1].close, pair[1]); retry(pair[2].close, pair[2]) end
end
