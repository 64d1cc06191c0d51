/*
 * Blocking functions and the current task.
 *
 * A blocking function tries its try_ body; on "retry" it schedules the
 * current task with its when_ partner and yields. Whoever resumes the
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
 * call that must wait puts its task in the socket's FIFO for its direction
 * (the socket's user value 1 for reads, 2 for writes: an array, made when
 * a call first waits, of [1] its first index, [2] its next free one, and
 * the tasks from 3); the first task there holds the turn, and a call that
 * finds another task's call holding it waits behind it without trying, so
 * the bytes of two writes never interleave and reads are served in call
 * order. When the holder's call ends, the next task is made ready at once
 * (it may have bytes to take that the socket already holds). A call on a
 * socket whose line is empty reads one count in the userdata
 * (xpio_userdata.in_line) and no table. The FIFO's values are weak, so a
 * task abandoned in the middle of a call (its coroutine never resumed)
 * gives the turn up when it is collected. A server holds one FIFO per
 * connection waiting to read, so it is kept small: 104 bytes (no hash
 * part, no table of the two directions), where it was 256.
 *
 * A task may name its coroutine (task._thread, as xpio.sched does): a
 * blocking call that must wait in any other coroutine (a coroutine.wrap
 * iterator inside the task) raises an error naming itself instead of
 * yielding to the wrong resumer, with nothing consumed and the task left
 * unscheduled. socket:lines is the safe iterator.
 */
#include "glue.h"

static const char current_task_key = 'T';

void xpio_push_current_task(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &current_task_key);
}

/* The task (checked: a table, or left out). */
int xpio_native_setCurrentTask(lua_State *L) {
    if (!lua_istable(L, 1)) lua_pushnil(L);
    else lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &current_task_key);
    return 0;
}

int xpio_native_getCurrentTask(lua_State *L) {
    xpio_push_current_task(L);
    return 1;
}

/* ------------------------------------------------------------ turns */

/* FIFO slots: its first index, its next free one, where the tasks start. */
enum { TURN_FIRST = 1, TURN_NEXT = 2, TURN_START = 3 };
static const char turn_mode_key = 'M';

static lua_Integer fifo_index(lua_State *L, int fifo, int slot) {
    lua_rawgeti(L, fifo, slot);
    lua_Integer value = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return value;
}

static void fifo_set(lua_State *L, int fifo, int slot, lua_Integer value) {
    lua_pushinteger(L, value);
    lua_rawseti(L, fifo, slot);
}

/* Pushes self's FIFO for `dir` (its user value `dir`) and returns 1; or
 * pushes nothing and returns 0 when there is none (and `create` is 0, or
 * self has no such user value). */
static int push_fifo(lua_State *L, int dir, int create) {
    if (lua_getiuservalue(L, 1, dir) == LUA_TTABLE) return 1;
    lua_pop(L, 1);
    if (!create) return 0;
    lua_createtable(L, TURN_START, 0);
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &turn_mode_key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "v");
        lua_setfield(L, -2, "__mode");
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &turn_mode_key);
    }
    lua_setmetatable(L, -2);
    int fifo = lua_gettop(L);
    fifo_set(L, fifo, TURN_FIRST, TURN_START);
    fifo_set(L, fifo, TURN_NEXT, TURN_START);
    lua_pushvalue(L, fifo);
    if (!lua_setiuservalue(L, 1, dir)) {
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

/* How many tasks self's line for `dir` may hold (xpio_userdata). */
static int32_t *in_line(lua_State *L, int dir) {
    return &((xpio_userdata *)lua_touserdata(L, 1))->in_line[dir - 1];
}

/* Pushes the FIFO's first task (the holder of the turn), or nil; drops
 * the removed, collected and ended entries before it. `count`: the line's
 * in_line; `current`: where the current task is on the stack (running, it
 * has not ended: its coroutine need not be looked at). */
static void fifo_head(lua_State *L, int fifo, int32_t *count, int current) {
    lua_Integer first = fifo_index(L, fifo, TURN_FIRST), next = fifo_index(L, fifo, TURN_NEXT);
    for (; first < next; first++) {
        int type = lua_rawgeti(L, fifo, first);
        if (type == LUA_TTABLE && !lua_rawequal(L, -1, current) && task_ended(L, lua_gettop(L))) {
            lua_pushnil(L);
            lua_rawseti(L, fifo, first);
            if (*count > 0) (*count)--;
            type = LUA_TNIL;
        }
        if (type != LUA_TNIL) {
            fifo_set(L, fifo, TURN_FIRST, first);
            return;
        }
        lua_pop(L, 1);
    }
    fifo_set(L, fifo, TURN_FIRST, TURN_START);
    fifo_set(L, fifo, TURN_NEXT, TURN_START);
    *count = 0;
    lua_pushnil(L);
}

/* The position of the value at `task` in the FIFO, or 0. */
static lua_Integer fifo_find(lua_State *L, int fifo, int task) {
    lua_Integer first = fifo_index(L, fifo, TURN_FIRST), next = fifo_index(L, fifo, TURN_NEXT);
    for (lua_Integer i = first; i < next; i++) {
        lua_rawgeti(L, fifo, i);
        int same = lua_rawequal(L, -1, task);
        lua_pop(L, 1);
        if (same) return i;
    }
    return 0;
}

/* 1 when another task's call holds self's turn in `dir`: the current task
 * must wait behind it without trying. */
static int turn_taken(lua_State *L, int dir) {
    int32_t *count = in_line(L, dir);
    if (*count == 0 || !push_fifo(L, dir, 0)) return 0;
    int fifo = lua_gettop(L);
    xpio_push_current_task(L);
    fifo_head(L, fifo, count, fifo + 1);
    int taken = !lua_isnil(L, -1) && !lua_rawequal(L, -1, -2);
    lua_settop(L, fifo - 1);
    return taken;
}

/* Puts the current task in self's FIFO for `dir` (once). */
static void take_place(lua_State *L, int dir) {
    if (!push_fifo(L, dir, 1)) return;
    int fifo = lua_gettop(L);
    xpio_push_current_task(L);
    if (!fifo_find(L, fifo, fifo + 1)) {
        lua_Integer next = fifo_index(L, fifo, TURN_NEXT);
        lua_pushvalue(L, fifo + 1);
        lua_rawseti(L, fifo, next);
        fifo_set(L, fifo, TURN_NEXT, next + 1);
        (*in_line(L, dir))++;
    }
    lua_settop(L, fifo - 1);
}

/* 1 when the task at `task` is the only one in the FIFO (first and last):
 * it is then taken out, the FIFO left empty. What most waits end with:
 * one connection, one task reading it. */
static int leave_alone(lua_State *L, int fifo, int task) {
    lua_Integer first = fifo_index(L, fifo, TURN_FIRST);
    if (fifo_index(L, fifo, TURN_NEXT) != first + 1) return 0;
    lua_rawgeti(L, fifo, first);
    int alone = lua_rawequal(L, -1, task);
    lua_pop(L, 1);
    if (!alone) return 0;
    lua_pushnil(L);
    lua_rawseti(L, fifo, first);
    if (first != TURN_START) fifo_set(L, fifo, TURN_FIRST, TURN_START);
    fifo_set(L, fifo, TURN_NEXT, TURN_START);
    return 1;
}

/* The current task's call ends: out of the FIFO; when it held the turn,
 * the next task is made ready at once (if it waits on a queue: one that
 * the queue has returned already will run anyway). Leaves the stack as it
 * found it, so it can run with a call's results on top. */
static void leave_turn(lua_State *L, const xpio_entry *entry) {
    int dir = entry->turns;
    if (!entry->method || !dir) return;
    int32_t *count = in_line(L, dir);
    int top = lua_gettop(L);
    if (*count == 0 || !push_fifo(L, dir, 0)) return;
    int fifo = lua_gettop(L);
    xpio_push_current_task(L);
    if (*count == 1 && leave_alone(L, fifo, fifo + 1)) {
        *count = 0;
        lua_settop(L, top);
        return;
    }
    lua_Integer at = fifo_find(L, fifo, fifo + 1);
    if (at) {
        fifo_head(L, fifo, count, fifo + 1);
        int held = lua_rawequal(L, -1, fifo + 1);
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, fifo, at);
        if (*count > 0) (*count)--;
        if (held) {
            fifo_head(L, fifo, count, fifo + 1);
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
static int turn_done(lua_State *L, const xpio_entry *entry, int n) {
    leave_turn(L, entry);
    return n;
}

/* 1 when the current task names its coroutine and it is not this one. */
static int foreign_coroutine(lua_State *L, int task) {
    xpio_push_name(L, XPIO_NAME_THREAD);
    int foreign = lua_rawget(L, task) == LUA_TTHREAD && lua_tothread(L, -1) != L;
    lua_pop(L, 1);
    return foreign;
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
 * task a blocking read still just tries. try_ calls never come here. */
static int read_waits_first(lua_State *L, const xpio_entry *entry) {
    if (entry->turns != 1) return 0; /* a socket's blocking read: self, checked, at 1 */
    void *socket = xpio_object_at(L, 1);
    return socket && xpio_socket_read_would_fail(socket) && able_to_wait(L);
}

/* The continuation's context: the number of arguments in the low 4 bits
 * (an entry has at most 15: the Spec's validator), and above them the bytes of a `whole` parameter
 * already moved by earlier tries (the body's call->progress). */
#define CONTEXT(nargs, done) ((lua_KContext)(((lua_KContext)(done) << 4) | (nargs)))

static int blocking_loop(lua_State *L, xpio_args *checked, size_t done);

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

/* A failure after `done` bytes of a whole write: nil, message, done. */
static int with_done(lua_State *L, int n, size_t done) {
    if (done == 0 || n != 2) return n;
    lua_pushinteger(L, (lua_Integer)done);
    return 3;
}

static int blocking_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    int nargs = (int)(ctx & 15);
    size_t done = (size_t)(ctx >> 4);
    if (lua_gettop(L) == nargs + 2 && lua_isnil(L, nargs + 1) && lua_type(L, nargs + 2) == LUA_TSTRING) {
        dequeue_current_task(L);
        return turn_done(L, xpio_current_entry(L), with_done(L, 2, done));
    }
    lua_settop(L, nargs); /* drop whatever else resume passed */
    return blocking_loop(L, NULL, done);
}

/* Tries the body; a `whole` entry tries again at once after a partial
 * write, telling the body how far it got (call->progress: the body knows
 * what its parameter is, a string, an array of strings, a file's range),
 * until the body says nothing remains; its result counts every byte. Only
 * when the body answers "retry" does the function need a coroutine and a
 * current task: it schedules the task with its when_ partner and yields. */
static int blocking_loop(lua_State *L, xpio_args *checked, size_t done) {
    const xpio_entry *entry = xpio_current_entry(L);
    xpio_args again;
    xpio_args *args = checked;
    xpio_call answer;
    xpio_call *call = &answer;
    if (!args) {
        args = &again;
        const char *unknown = entry->check(L, args);
        if (unknown) return turn_done(L, entry, with_done(L, xpio_push_unknown(L, unknown), done));
    }
    /* Another task's call holds the turn: wait behind it, without trying
     * (unless this call could not wait at all: then it just tries). */
    int dir = 0;
    int wait_untried = 0;
    if (entry->method && (dir = entry->turns) && turn_taken(L, dir) && able_to_wait(L)) wait_untried = 1;
    if (!wait_untried && checked && read_waits_first(L, entry)) wait_untried = 1;
    if (!wait_untried) {
        xpio_make_objects(L, entry, call);
        int whole = entry->whole >= 0;
        int status;
        for (;;) {
            call->progress = (int64_t)done;
            status = entry->attempt(call, args);
            if (status == XPIO_RETRY) break;
            if (!whole) return turn_done(L, entry, xpio_finish(L, call, status));
            if (status < 0) return turn_done(L, entry, with_done(L, xpio_finish(L, call, status), done));
            lua_Integer moved = call->result[0].u.integer;
            if (moved > 0) done += (size_t)moved;
            if (call->remaining <= 0 || moved <= 0) {
                call->result[0].u.integer = (lua_Integer)done;
                return turn_done(L, entry, xpio_finish(L, call, status));
            }
        }
    }
    /* A call that waits untried has been through able_to_wait already. */
    if (!wait_untried) {
        if (!lua_isyieldable(L))
            return luaL_error(L, "xpio: %s must be called from a coroutine (use try_%s outside one)", entry->name, entry->name);
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
        if (!has_task) return luaL_error(L, "xpio: %s needs a current task (xpio.setCurrentTask)", entry->name);
        if (!has_queue) return luaL_error(L, "xpio: %s: the current task's _queue is not a tqueue", entry->name);
    }
    xpio_push_current_task(L);
    int foreign = foreign_coroutine(L, lua_gettop(L));
    lua_pop(L, 1);
    if (foreign) {
        return luaL_error(L, "xpio: %s would wait in a coroutine that is not the current task's (a coroutine "
                             "inside a task cannot wait; for lines use socket:lines)", entry->name);
    }
    int nargs = entry->nparams;
    lua_settop(L, nargs);
    /* when_(self, task, arguments...) for a method (socket:wait(what) ->
     * when_wait(task, what)), when_(task, arguments...) otherwise.
     * A current task that is still scheduled (a scheduler resumed it early
     * without task:_dequeue()) makes when_ raise "already scheduled". */
    lua_pushvalue(L, XPIO_PARTNER_UPVALUE);
    if (entry->method) {
        lua_pushvalue(L, 1);
        xpio_push_current_task(L);
        for (int i = 2; i <= nargs; i++) lua_pushvalue(L, i);
    } else {
        xpio_push_current_task(L);
        for (int i = 1; i <= nargs; i++) lua_pushvalue(L, i);
    }
    lua_call(L, nargs + 1, 2);
    if (!lua_toboolean(L, -2)) return turn_done(L, entry, with_done(L, 2, done)); /* the when_ partner failed: its nil, message */
    /* Only now, the task scheduled, does it take its place in the line: an
     * error raised before (by the partner) leaves no place behind. */
    if (!dir) dir = entry->turns;
    if (dir) take_place(L, dir);
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
    return blocking_loop(L, &args, 0);
}
