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
 */
#include "glue.h"

static const char current_task_key = 'T';
extern int xpio_queue_kind;

void xpio_push_current_task(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &current_task_key);
}

int xpio_native_setCurrentTask(lua_State *L) {
    xpio_call call;
    xpio_decode(L, xpio_current_entry(L), &call);
    if (call.arg[0].tag == XPIO_ABSENT) lua_pushnil(L);
    else lua_pushvalue(L, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &current_task_key);
    return 0;
}

int xpio_native_getCurrentTask(lua_State *L) {
    xpio_push_current_task(L);
    return 1;
}

/* The continuation's context: the number of arguments in the low 4 bits
 * (at most XPIO_MAX_ARGS), and above them the bytes of a `whole` parameter
 * already written by earlier tries. */
#define CONTEXT(nargs, done) ((lua_KContext)(((lua_KContext)(done) << 4) | (nargs)))

static int blocking_loop(lua_State *L, xpio_call *decoded, size_t done);

/* Unschedules the current task if it is still scheduled: task:_dequeue(). */
static void dequeue_current_task(lua_State *L) {
    xpio_push_current_task(L);
    if (lua_istable(L, -1)) {
        lua_pushliteral(L, "_dequeue");
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
        return with_done(L, 2, done);
    }
    lua_settop(L, nargs); /* drop whatever else resume passed */
    return blocking_loop(L, NULL, done);
}

/* Tries the body; a `whole` entry tries again at once with the rest of its
 * string after a partial write, and its result counts every byte. Only
 * when the body answers "retry" does the function need a coroutine and a
 * current task: it schedules the task with its when_ partner and yields. */
static int blocking_loop(lua_State *L, xpio_call *decoded, size_t done) {
    const xpio_entry *entry = xpio_current_entry(L);
    xpio_call again;
    xpio_call *call = decoded;
    if (!call) {
        call = &again;
        int status = xpio_decode(L, entry, call);
        if (status) return with_done(L, xpio_push_failure(L, call, status), done);
    }
    xpio_make_objects(L, entry, call);
    xpio_value *whole = entry->whole >= 0 ? &call->arg[entry->whole] : NULL;
    const char *base = whole ? whole->u.string : NULL;
    size_t full = whole ? whole->length : 0;
    int status;
    for (;;) {
        if (whole) {
            whole->u.string = base + done;
            whole->length = full - done;
        }
        status = entry->body(call);
        if (status == XPIO_RETRY) break;
        if (!whole) return xpio_finish(L, call, status);
        if (status < 0) return with_done(L, xpio_finish(L, call, status), done);
        lua_Integer wrote = call->result[0].u.integer;
        if (wrote > 0) done += (size_t)wrote;
        if (done >= full || wrote <= 0) {
            call->result[0].u.integer = (lua_Integer)done;
            return xpio_finish(L, call, status);
        }
    }
    if (!lua_isyieldable(L))
        return luaL_error(L, "xpio: %s must be called from a coroutine (use try_%s outside one)", entry->name, entry->name);
    xpio_push_current_task(L);
    int has_task = lua_istable(L, -1);
    int has_queue = 0;
    if (has_task) {
        lua_pushliteral(L, "_queue");
        lua_rawget(L, -2);
        has_queue = xpio_toobject(L, -1, xpio_queue_kind) != NULL;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (!has_task) return luaL_error(L, "xpio: %s needs a current task (xpio.setCurrentTask)", entry->name);
    if (!has_queue) return luaL_error(L, "xpio: %s: the current task's _queue is not a tqueue", entry->name);
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
    if (!lua_toboolean(L, -2)) return with_done(L, 2, done); /* the when_ partner failed: its nil, message */
    lua_settop(L, nargs);
    return lua_yieldk(L, 0, CONTEXT(nargs, done), blocking_continue);
}

/* A blocking function checks its arguments and tries at once: it needs a
 * coroutine and a current task only to wait (read(0), data already there,
 * a known exit status, a closed socket all answer without one). */
int xpio_call_blocking(lua_State *L) {
    const xpio_entry *entry = xpio_current_entry(L);
    xpio_call call;
    int status = xpio_decode(L, entry, &call);
    if (status) return xpio_push_failure(L, &call, status);
    return blocking_loop(L, &call, 0);
}
