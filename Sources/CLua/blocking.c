/*
 * Blocking functions and the current task.
 *
 * A blocking function tries its try_ body; on "retry" it schedules the
 * current task as its when_ partner would (that entry's body, on this
 * call's arguments: Glue.c's wait_ functions) and yields. Whoever resumes the
 * coroutine (after tqueue:wait returned the task) makes it try again. The
 * yield is the last statement of a C function and its continuation loops
 * back, so no Swift frame is ever live across it.
 *
 * A scheduler that gives up on a wait (a timeout, a cancellation) resumes
 * the coroutine with exactly two values, nil and a message: the blocking
 * function then returns them (`nil, "timeout"`), after unscheduling the
 * task if the scheduler has not. Nothing was consumed: the try_ body had
 * answered "retry".
 *
 * One socket, many tasks: blocking reads on one socket take turns, and so
 * do blocking writes (connect and accept count as a write and a read). A
 * call that must wait puts its task in the socket's FIFO (its user value,
 * an array made when a call first waits: the reads' line at the odd
 * places, the writes' at the even ones); the first task of a line holds
 * its turn, and a call that finds another task's call holding it waits
 * behind it without trying, so the bytes of two writes never interleave
 * and reads are served in call order. When the holder's call ends, the
 * next task is made ready at once (it may have bytes to take that the
 * socket already holds). Where a line starts and ends is kept in the
 * userdata (xpio_userdata.line), so a call on a socket whose line is
 * empty looks at no table, and a task alone in its line leaves it without
 * writing one. The FIFO's values are weak, so a task abandoned in the
 * middle of a call (its coroutine never resumed) gives the turn up when
 * it is collected. A server holds one FIFO per connection waiting to
 * read, so it is kept small: an array of one task, no hash part, no table
 * per direction.
 *
 * A task may name its coroutine (task._thread, as xpio.sched does): a
 * blocking call that must wait in any other coroutine (a coroutine.wrap
 * iterator inside the task) raises an error naming itself instead of
 * yielding to the wrong resumer, with nothing consumed and the task left
 * unscheduled. socket:lines is the safe iterator.
 */
#include "glue.h"

/* The task (checked: a table, or left out). Its place in the kinds
 * upvalue exists from luaopen, so setting it never allocates. */
int xpio_native_setCurrentTask(lua_State *L) {
    if (!lua_istable(L, 1)) lua_pushnil(L);
    else lua_pushvalue(L, 1);
    lua_rawseti(L, XPIO_KINDS_UPVALUE, xpio_current_task_index());
    return 0;
}

int xpio_native_getCurrentTask(lua_State *L) {
    xpio_push_current_task(L);
    return 1;
}

/* ------------------------------------------------------------ turns */

static const char turn_mode_key = 'M';

/* Self's line for `dir`: where its first task is in the FIFO table, and
 * the next free place. `self` is the userdata at 1, which the blocking
 * call looked up once (a lua_touserdata each time cost a tenth of the
 * turn's bookkeeping). */
static xpio_line *line_of(xpio_userdata *self, int dir) { return &self->line[dir - 1]; }

static int line_empty(const xpio_line *line) { return line->first == line->next; }

static void line_clear(xpio_line *line) { line->first = line->next = 1; }

/* Where place `place` of the line for `dir` is in the FIFO table: the two
 * lines interleave, so that one user value holds both. */
static lua_Integer slot(int dir, int32_t place) { return 2 * (lua_Integer)place - 2 + dir; }

/* Pushes self's FIFO (its user value) and returns 1; or pushes nothing and
 * returns 0 when there is none (and `create` is 0, or self has no user
 * value). `dir` sizes a new one for its first task. */
static int push_fifo(lua_State *L, int dir, int create) {
    if (lua_getiuservalue(L, 1, 1) == LUA_TTABLE) return 1;
    lua_pop(L, 1);
    if (!create) return 0;
    lua_createtable(L, dir, 0);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &turn_mode_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "v");
        lua_setfield(L, -2, "__mode");
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &turn_mode_key);
    }
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    if (!lua_setiuservalue(L, 1, 1)) {
        lua_pop(L, 1);
        return 0;
    }
    return 1;
}

/* 1 when the task at `task` names its coroutine (task._thread) and that
 * coroutine has ended (returned or raised): a task that died inside a
 * call (an error raised there) cannot hold a turn. */
static int task_ended(lua_State *L, int task) {
    xpio_push_name(L, XPIO_NAME_THREAD);
    lua_rawget(L, task);
    lua_State *co = lua_tothread(L, -1);
    lua_pop(L, 1);
    if (!co || co == L) return 0;
    int status = lua_status(co);
    if (status == LUA_YIELD) return 0;
    if (status != LUA_OK) return 1;
    lua_Debug ar;
    return !lua_getstack(co, 0, &ar) && lua_gettop(co) == 0;
}

/* Pushes the FIFO's first task (the holder of the turn), or nil; skips
 * the removed, collected and ended entries before it. `current`: where
 * the current task is on the stack (running, it has not ended: its
 * coroutine need not be looked at). */
static void fifo_head(lua_State *L, int fifo, int dir, xpio_line *line, int current) {
    for (; line->first < line->next; line->first++) {
        int type = lua_rawgeti(L, fifo, slot(dir, line->first));
        if (type == LUA_TTABLE && !lua_rawequal(L, -1, current) && task_ended(L, lua_gettop(L))) type = LUA_TNIL;
        if (type != LUA_TNIL) return;
        lua_pop(L, 1);
    }
    line_clear(line);
    lua_pushnil(L);
}

/* The position of the value at `task` in the line, or 0. */
static int32_t fifo_find(lua_State *L, int fifo, int dir, const xpio_line *line, int task) {
    for (int32_t i = line->first; i < line->next; i++) {
        lua_rawgeti(L, fifo, slot(dir, i));
        int same = lua_rawequal(L, -1, task);
        lua_pop(L, 1);
        if (same) return i;
    }
    return 0;
}

/* Moves the line's tasks to the start of the FIFO, dropping the places
 * of those that left. A line that never empties (two tasks writing to one
 * busy socket in turn) would otherwise move up the array one place per
 * call, towards INT32_MAX. */
static void fifo_compact(lua_State *L, int fifo, int dir, xpio_line *line) {
    int32_t to = 1;
    for (int32_t i = line->first; i < line->next; i++) {
        if (lua_rawgeti(L, fifo, slot(dir, i)) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        lua_rawseti(L, fifo, slot(dir, to++));
    }
    for (int32_t i = to; i < line->next; i++) {
        lua_pushnil(L);
        lua_rawseti(L, fifo, slot(dir, i));
    }
    line->first = 1;
    line->next = to;
}

/* 1 when another task's call holds self's turn in `dir`: the current task
 * must wait behind it without trying. */
static int turn_taken(lua_State *L, xpio_userdata *self, int dir) {
    xpio_line *line = line_of(self, dir);
    if (line_empty(line) || !push_fifo(L, dir, 0)) return 0;
    int fifo = lua_gettop(L);
    xpio_push_current_task(L);
    fifo_head(L, fifo, dir, line, fifo + 1);
    int taken = !lua_isnil(L, -1) && !lua_rawequal(L, -1, -2);
    lua_settop(L, fifo - 1);
    return taken;
}

/* Puts the current task in self's FIFO for `dir` (once). The place is
 * counted only once the task is stored: a memory error storing it leaves
 * the line as it was. */
static void take_place(lua_State *L, xpio_userdata *self, int dir) {
    if (!push_fifo(L, dir, 1)) return;
    int fifo = lua_gettop(L);
    xpio_push_current_task(L);
    xpio_line *line = line_of(self, dir);
    if (line_empty(line) || !fifo_find(L, fifo, dir, line, fifo + 1)) {
        /* Once half the places behind the end are passed ones, or the end
         * is near INT32_MAX (a head that held the turn while two billion
         * others timed out behind it): O(1) a call, amortised. */
        if ((line->first > 1 && line->first >= line->next - line->first) || line->next == INT32_MAX)
            fifo_compact(L, fifo, dir, line);
        if (line->next == INT32_MAX) { /* two billion tasks in line: it cannot be */
            lua_settop(L, fifo - 1);
            return;
        }
        lua_pushvalue(L, fifo + 1);
        lua_rawseti(L, fifo, slot(dir, line->next));
        line->next++;
    }
    lua_settop(L, fifo - 1);
}

/* The current task's call ends: out of the FIFO; when it held the turn,
 * the next task is made ready at once (if it waits on a queue: one that
 * the queue has returned already will run anyway). Leaves the stack as it
 * found it, so it can run with a call's results on top. A task alone in
 * the line (one connection, one task reading it: what most waits end
 * with) just empties it: the FIFO's values are weak, so the entry left
 * behind holds nothing, and the next task to wait overwrites it. */
static void leave_turn(lua_State *L, xpio_userdata *self, const xpio_entry *entry) {
    int dir = entry->turns;
    if (!entry->method || !dir) return;
    xpio_line *line = line_of(self, dir);
    int top = lua_gettop(L);
    if (line_empty(line) || !push_fifo(L, dir, 0)) return;
    int fifo = lua_gettop(L);
    xpio_push_current_task(L);
    int32_t at = fifo_find(L, fifo, dir, line, fifo + 1);
    if (at && line->next == line->first + 1) {
        line_clear(line);
    } else if (at) {
        fifo_head(L, fifo, dir, line, fifo + 1);
        int held = lua_rawequal(L, -1, fifo + 1);
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, fifo, slot(dir, at));
        if (held) {
            fifo_head(L, fifo, dir, line, fifo + 1);
            if (lua_istable(L, -1)) {
                int next = lua_gettop(L);
                xpio_push_name(L, XPIO_NAME_DEQUEUE);
                if (lua_rawget(L, next) == LUA_TFUNCTION) {
                    lua_pushvalue(L, next);
                    lua_call(L, 1, 0);
                    xpio_schedule_now(L, next);
                }
            }
        }
    }
    lua_settop(L, top);
}

/* Returns the `n` results on top after leaving the turn. */
static int turn_done(lua_State *L, xpio_userdata *self, const xpio_entry *entry, int n) {
    leave_turn(L, self, entry);
    return n;
}

/* 1 when the current task names its coroutine and it is not this one. */
static int foreign_coroutine(lua_State *L, int task) {
    xpio_push_name(L, XPIO_NAME_THREAD);
    int foreign = lua_rawget(L, task) == LUA_TTHREAD && lua_tothread(L, -1) != L;
    lua_pop(L, 1);
    return foreign;
}

/* 1 when the current task is, or is about to be, the first behind the
 * task holding self's turn for `dir` (turn_taken has moved line->first to
 * that task). That one waits on the socket's readiness as the holder does,
 * so that events still reach the line when the holder's scheduler never
 * resumes it; those further back are parked (behind_target). */
static int next_in_line(lua_State *L, xpio_userdata *self, int dir) {
    xpio_line *line = line_of(self, dir);
    if (line_empty(line) || !push_fifo(L, dir, 0)) return 1;
    int fifo = lua_gettop(L);
    xpio_push_current_task(L);
    int next = 1;
    for (int32_t i = line->first + 1; i < line->next; i++) {
        if (lua_rawgeti(L, fifo, slot(dir, i)) != LUA_TNIL) {
            next = lua_rawequal(L, -1, fifo + 1);
            break;
        }
        lua_pop(L, 1);
    }
    lua_settop(L, fifo - 1);
    return next;
}

/* 1 when this call could wait: a coroutine, and a current task with a
 * queue (the checks that raise are in blocking_loop). */
static int able_to_wait(lua_State *L) {
    if (!lua_isyieldable(L)) return 0;
    xpio_push_current_task(L);
    int able = 0;
    if (lua_istable(L, -1)) {
        xpio_push_name(L, XPIO_NAME_QUEUE);
        lua_rawget(L, -2);
        able = xpio_toobject(L, -1, xpio_description.queue_kind) != NULL;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return able;
}

/* 1 when this blocking read is to wait for readability before its first
 * try: its socket holds no bytes and its last read was short, so asking
 * the kernel now would most likely answer EAGAIN (libuv's and nginx's
 * rule; Socket.readWouldFail). Only where the call can wait: outside a
 * task a blocking read still just tries (and in a coroutine inside one,
 * which blocking_loop finds out later, on the way to waiting).
 * try_ calls never come here. */
static int read_waits_first(lua_State *L, xpio_userdata *self, const xpio_entry *entry) {
    if (entry->turns != 1) return 0; /* a socket's blocking read: self, checked, at 1 */
    void *socket = self->object;
    return socket && xpio_socket_read_would_fail(socket) && able_to_wait(L);
}

/* The continuation's context: the number of arguments in the low 4 bits
 * (an entry has at most 15: the Spec's validator), and above them the bytes of a `whole` parameter
 * already moved by earlier tries (the body's call->progress). */
#define CONTEXT(nargs, done) ((lua_KContext)(((lua_KContext)(done) << 4) | (nargs)))

static int blocking_loop(lua_State *L, const xpio_entry *entry, xpio_args *checked, size_t done);

/* The target of a call behind another task's turn, and not the first
 * behind it: parked on the socket (xpio_wait_with), so that the queue
 * wakes it only when the socket goes away; the turn comes to it when the
 * task before it hands it on (leave_turn). Waiting on the socket's
 * readiness, every task in line was resumed at each event: n tasks in line
 * made n^2/2 resumes. */
static int32_t behind_target(xpio_call *call, xpio_args *args) {
    (void)args;
    call->result[0].tag = XPIO_TARGET;
    call->result[0].u.object = NULL;
    call->result[1].tag = XPIO_INTEGER;
    call->result[1].u.integer = XPIO_PARKED;
    return 2;
}

/* Unschedules the current task if it is still scheduled: task:_dequeue(). */
static void dequeue_current_task(lua_State *L) {
    xpio_push_current_task(L);
    if (lua_istable(L, -1)) {
        xpio_push_name(L, XPIO_NAME_DEQUEUE);
        if (lua_rawget(L, -2) == LUA_TFUNCTION) {
            lua_pushvalue(L, -2);
            lua_call(L, 1, 0);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* 1 when the task at `task` has a _dequeue: it is scheduled already. */
static int scheduled_already(lua_State *L, int task) {
    if (!lua_istable(L, task)) return 0;
    xpio_push_name(L, XPIO_NAME_DEQUEUE);
    int scheduled = lua_rawget(L, task) != LUA_TNIL;
    lua_pop(L, 1);
    return scheduled;
}

/* A method's self (checked: XPIO's userdata at 1), or NULL. */
static xpio_userdata *self_of(lua_State *L, const xpio_entry *entry) {
    return entry->method ? (xpio_userdata *)lua_touserdata(L, 1) : NULL;
}

/* A failure after `done` bytes of a whole write: nil, message, done. */
static int with_done(lua_State *L, int n, size_t done) {
    if (done == 0 || n != 2) return n;
    lua_pushinteger(L, (lua_Integer)done);
    return 3;
}

/* The call must wait and cannot here (the message on top says why): an
 * error, with nothing consumed; but a whole write that has sent part of
 * its data already answers nil, message and that count, so that nothing
 * sent goes unreported. */
static int cannot_wait(lua_State *L, xpio_userdata *self, const xpio_entry *entry, size_t done) {
    if (done == 0) return lua_error(L);
    lua_pushnil(L);
    lua_insert(L, -2);
    return turn_done(L, self, entry, with_done(L, 2, done));
}

static int blocking_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    int nargs = (int)(ctx & 15);
    size_t done = (size_t)(ctx >> 4);
    if (lua_gettop(L) == nargs + 2 && lua_isnil(L, nargs + 1) && lua_type(L, nargs + 2) == LUA_TSTRING) {
        dequeue_current_task(L);
        const xpio_entry *entry = xpio_current_entry(L);
        return turn_done(L, self_of(L, entry), entry, with_done(L, 2, done));
    }
    lua_settop(L, nargs); /* drop whatever else resume passed */
    return blocking_loop(L, xpio_current_entry(L), NULL, done);
}

/* Tries the body; a `whole` entry tries again at once after a partial
 * write, telling the body how far it got (call->progress: the body knows
 * what its parameter is, a string, an array of strings, a file's range),
 * until the body says nothing remains; its result counts every byte. Only
 * when the body answers "retry" does the function need a coroutine and a
 * current task: it schedules the task as its when_ partner would and yields. */
static int blocking_loop(lua_State *L, const xpio_entry *entry, xpio_args *checked, size_t done) {
    xpio_userdata *self = self_of(L, entry);
    xpio_args again;
    xpio_args *args = checked;
    xpio_call answer;
    xpio_call *call = &answer;
    if (!args) {
        args = &again;
        const char *unknown = entry->check(L, args);
        if (unknown) return turn_done(L, self, entry, with_done(L, xpio_push_unknown(L, unknown), done));
    }
    /* Another task's call holds the turn: wait behind it, without trying
     * (unless this call could not wait at all: then it just tries). */
    int dir = 0;
    int wait_untried = 0, behind = 0;
    if (entry->method && (dir = entry->turns) && turn_taken(L, self, dir) && able_to_wait(L)) {
        wait_untried = 1;
        behind = !next_in_line(L, self, dir);
    }
    int read_first = 0;
    if (!wait_untried && checked && read_waits_first(L, self, entry)) wait_untried = read_first = 1;
try:
    if (!wait_untried) {
        xpio_make_objects(L, entry, call);
        int whole = entry->whole >= 0;
        int status;
        for (;;) {
            call->progress = (int64_t)done;
            status = entry->nobjects ? xpio_attempt_opening(L, call, entry->attempt, args) : entry->attempt(call, args);
            if (status == XPIO_RETRY) break;
            if (!whole) return turn_done(L, self, entry, xpio_finish(L, call, status));
            if (status < 0) return turn_done(L, self, entry, with_done(L, xpio_finish(L, call, status), done));
            lua_Integer moved = call->result[0].u.integer;
            if (moved > 0) done += (size_t)moved;
            if (call->remaining <= 0 || moved <= 0) {
                call->result[0].u.integer = (lua_Integer)done;
                return turn_done(L, self, entry, xpio_finish(L, call, status));
            }
        }
    }
    /* A call that waits untried has been through able_to_wait already. */
    if (!wait_untried) {
        if (!lua_isyieldable(L)) {
            lua_pushfstring(L, "xpio: %s must be called from a coroutine (use try_%s outside one)", entry->name, entry->name);
            return cannot_wait(L, self, entry, done);
        }
        xpio_push_current_task(L);
        int has_task = lua_istable(L, -1);
        int has_queue = 0;
        if (has_task) {
            xpio_push_name(L, XPIO_NAME_QUEUE);
            lua_rawget(L, -2);
            has_queue = xpio_toobject(L, -1, xpio_description.queue_kind) != NULL;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        if (!has_task) {
            lua_pushfstring(L, "xpio: %s needs a current task (xpio.setCurrentTask)", entry->name);
            return cannot_wait(L, self, entry, done);
        }
        if (!has_queue) {
            lua_pushfstring(L, "xpio: %s: the current task's _queue is not a tqueue", entry->name);
            return cannot_wait(L, self, entry, done);
        }
    }
    xpio_push_current_task(L);
    int foreign = foreign_coroutine(L, lua_gettop(L));
    int scheduled = scheduled_already(L, lua_gettop(L));
    lua_pop(L, 1);
    if (foreign && read_first) {
        /* It was only to spare a read bound to fail: here, where it may
         * not wait, it reads, and answers at once when bytes are there. */
        wait_untried = read_first = 0;
        goto try;
    }
    if (foreign) {
        lua_pushfstring(L, "xpio: %s would wait in a coroutine that is not the current task's (a coroutine "
                           "inside a task cannot wait; for lines use socket:lines)", entry->name);
        return cannot_wait(L, self, entry, done);
    }
    /* A current task that is still scheduled (a scheduler resumed it early
     * without task:_dequeue(), or two coroutines share it) cannot wait
     * again: an error, and a whole write's count if it has sent part. */
    if (scheduled) {
        lua_pushfstring(L, "xpio: %s: the current task is already scheduled (resumed without task:_dequeue()?)",
                        entry->name);
        return cannot_wait(L, self, entry, done);
    }
    int nargs = entry->nparams;
    lua_settop(L, nargs);
    /* Scheduled as the when_ partner would schedule it (socket:wait(what)
     * as socket:when_wait(task, what)), its body given this call's checked
     * arguments. */
    xpio_push_current_task(L);
    int answered = xpio_wait_with(L, behind ? behind_target : entry->wait_target, args, nargs + 1, entry->method ? 1 : 0);
    if (!lua_toboolean(L, -answered)) return turn_done(L, self, entry, with_done(L, answered, done)); /* nil, message */
    /* Only now, the task scheduled, does it take its place in the line: an
     * error raised before (by the partner) leaves no place behind. */
    if (!dir) dir = entry->turns;
    if (dir) take_place(L, self, dir);
    lua_settop(L, nargs);
    return lua_yieldk(L, 0, CONTEXT(nargs, done), blocking_continue);
}

/* A blocking function checks its arguments and tries at once: it needs a
 * coroutine and a current task only to wait (read(0), data already there,
 * a known exit status, a closed socket all answer without one). */
int xpio_call_blocking(lua_State *L) {
    const xpio_entry *entry = xpio_current_entry(L);
    xpio_args args;
    const char *unknown = entry->check(L, &args);
    if (unknown) return xpio_push_unknown(L, unknown);
    return blocking_loop(L, entry, &args, 0);
}
