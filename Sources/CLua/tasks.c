/*
 * Tasks on task queues: the Lua half. The runtime's queue knows waiters by
 * id; a queue's userdata keeps one user value, the waiters: for waiter id
 * w, the task at 2w + 1 and the object it waits on at 2w + 2 (kept alive
 * while the task waits), and at 0 the queue's _dequeue function. One
 * table, so storing and forgetting a waiter reads one user value; one
 * user value, as every object has (a second one would cost every socket
 * 16 bytes).
 * Task fields are read and written raw: a queue never runs user code.
 *
 * Every change that allocates (and so can fail with a memory error) comes
 * before the runtime commits, and every change after it only clears fields
 * that exist, which never allocates: a call either completes or leaves the
 * queue as it was.
 */
#include "glue.h"

static void clear_fields(lua_State *L, int task) {
    xpio_push_name(L, XPIO_NAME_DEQUEUE);
    lua_pushnil(L);
    lua_rawset(L, task);
    xpio_push_name(L, XPIO_NAME_DEQUEUEDATA);
    lua_pushnil(L);
    lua_rawset(L, task);
}

/* Where waiter `key` (its id + 1, the task's _dequeuedata) keeps its task
 * in the waiters table; its object is at the next index. */
static lua_Integer task_index(lua_Integer key) { return 2 * key - 1; }

/* Clears waiter `key` in the waiters table at `waiters`. */
static void forget_in(lua_State *L, int waiters, lua_Integer key) {
    lua_pushnil(L);
    lua_rawseti(L, waiters, task_index(key));
    lua_pushnil(L);
    lua_rawseti(L, waiters, task_index(key) + 1);
}

static void *queue_object(lua_State *L, int index) {
    void **slot = lua_touserdata(L, index);
    return slot ? *slot : NULL;
}

/* task:_dequeue(), or task._dequeue(task._dequeuedata): the queue is
 * upvalue 1 and the kinds (with the names) upvalue 2, as in every entry;
 * the data is the task's waiter key. Returns true, or nothing when
 * the task is not scheduled on this queue. Anything else as the argument
 * is an error: a silent no-op would leave the task scheduled. */
static int dequeue(lua_State *L) {
    int queue = lua_upvalueindex(1);
    void *object = queue_object(L, queue);
    int by_task = lua_istable(L, 1);
    if (!by_task && !lua_isinteger(L, 1)) return luaL_typeerror(L, 1, "task or task._dequeuedata");
    if (!object) return 0;
    if (by_task) {
        xpio_push_name(L, XPIO_NAME_DEQUEUEDATA);
        lua_rawget(L, 1);
    } else {
        lua_pushvalue(L, 1);
    }
    int isinteger;
    lua_Integer key = lua_tointegerx(L, -1, &isinteger);
    if (!isinteger || key < 1 || key > INT32_MAX) return 0;
    if (lua_getiuservalue(L, queue, 1) != LUA_TTABLE) return 0;
    int waiters = lua_gettop(L);
    if (lua_rawgeti(L, waiters, task_index(key)) != LUA_TTABLE) return 0;
    if (by_task && !lua_rawequal(L, -1, 1)) return 0;
    int task = lua_gettop(L);
    xpio_queue_cancel(object, (int32_t)(key - 1));
    forget_in(L, waiters, key);
    clear_fields(L, task);
    lua_pushboolean(L, 1);
    return 1;
}

/* Pushes the queue's waiters table and its _dequeue function, made on
 * first use (and again after a close dropped them, or after the debug
 * library put something else there: store_task reads the function's
 * upvalue, so it must be this module's closure). */
static void prepare(lua_State *L, int queue) {
    if (lua_getiuservalue(L, queue, 1) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, queue, 1);
    }
    int waiters = lua_gettop(L);
    if (lua_rawgeti(L, waiters, 0) != LUA_TFUNCTION || lua_tocfunction(L, -1) != dequeue) {
        lua_pop(L, 1);
        lua_pushvalue(L, queue);
        lua_pushvalue(L, XPIO_KINDS_UPVALUE);
        lua_pushcclosure(L, dequeue, 2);
        lua_pushvalue(L, -1);
        lua_rawseti(L, waiters, 0);
    }
}

/* The task and the object it waits on under its waiter key, and its
 * _dequeuedata and _dequeue fields: the steps of scheduling that allocate.
 * Arguments: the waiters table, the queue's _dequeue function (whose
 * second upvalue is the kinds, for the names), the task, the object and
 * the key. */
static int store_task(lua_State *L) {
    lua_Integer key = lua_tointeger(L, 5);
    lua_getupvalue(L, 2, 2);
    lua_pushvalue(L, 3);
    lua_rawseti(L, 1, task_index(key));
    lua_pushvalue(L, 4);
    lua_rawseti(L, 1, task_index(key) + 1);
    lua_rawgeti(L, 6, xpio_name_index(XPIO_NAME_DEQUEUEDATA));
    lua_pushinteger(L, key);
    lua_rawset(L, 3);
    lua_rawgeti(L, 6, xpio_name_index(XPIO_NAME_DEQUEUE));
    lua_pushvalue(L, 2);
    lua_rawset(L, 3);
    return 0;
}

/* Calls store_task protected, with prepare's waiters table and function
 * (at `queue` + 1 and + 2) as its first arguments; the waiters table takes
 * the queue's slot, for the undo. The stack reaches no higher than with
 * the queue kept and the store fetching the two itself: a blocking call
 * waits through here in the task's coroutine, and two slots more made the
 * coroutine's stack grow from 40 to 80 slots (640 bytes per connection of
 * a server). The queue stays reachable meanwhile: the function, an
 * argument, holds it. Returns lua_pcall's status (the error on top). */
static int store_protected(lua_State *L, int queue, int task, int object, lua_Integer key) {
    lua_pushvalue(L, queue + 1);
    lua_replace(L, queue);
    lua_pushcfunction(L, store_task);
    lua_rotate(L, queue + 1, 1);
    lua_pushvalue(L, task);
    if (object) lua_pushvalue(L, object);
    else lua_pushnil(L);
    lua_pushinteger(L, key);
    return lua_pcall(L, 5, 0, 0);
}

/* when_read, when_write, when_wait, ...: the body says what to wait on;
 * the task is scheduled on its _queue until then. */
int xpio_call_when(lua_State *L) {
    const xpio_entry *entry = xpio_current_entry(L);
    xpio_args args;
    xpio_call call;
    const char *unknown = entry->check(L, &args);
    if (unknown) return xpio_push_unknown(L, unknown);
    int task = entry->method ? 2 : 1;
    xpio_push_name(L, XPIO_NAME_QUEUE);
    lua_rawget(L, task);
    int queue = lua_gettop(L);
    void **slot = xpio_toobject(L, queue, xpio_description.queue_kind);
    if (!slot) return xpio_argerror(L, task, "task._queue is not a tqueue");
    xpio_push_name(L, XPIO_NAME_DEQUEUE);
    if (lua_rawget(L, task) != LUA_TNIL) return luaL_error(L, "xpio: task is already scheduled");
    lua_pop(L, 1);
    if (!*slot) {
        call.message = "tqueue";
        return xpio_push_failure(L, &call, XPIO_CLOSED);
    }

    int status = entry->attempt(&call, &args);
    if (status < 0) return xpio_push_failure(L, &call, status);
    void *target = status > 0 && call.result[0].tag == XPIO_TARGET ? call.result[0].u.object : NULL;
    int readiness = target ? (int)call.result[1].u.integer : XPIO_READABLE; /* no target: ready at once */

    prepare(L, queue);
    void *object = *slot; /* the queue stays reachable: store_protected says how */
    int32_t waiter = xpio_queue_reserve(&call, object);
    if (waiter < 0) return xpio_push_failure(L, &call, waiter);
    lua_Integer key = (lua_Integer)waiter + 1;
    /* Storing may allocate: under lua_pcall, so that a memory error is
     * undone (every undo clears what exists, which never allocates). */
    if (store_protected(L, queue, task, entry->method ? 1 : 0, key) != LUA_OK) {
        xpio_queue_cancel(object, waiter);
        forget_in(L, queue, key); /* the waiters, in the queue's slot */
        clear_fields(L, task);
        return lua_error(L);
    }

    status = xpio_queue_schedule(&call, object, waiter, target, readiness);
    if (status < 0) {
        xpio_queue_cancel(object, waiter);
        forget_in(L, queue, key); /* the waiters, in the queue's slot */
        clear_fields(L, task);
        return xpio_push_failure(L, &call, status);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* Schedules the task at `task` on its _queue, ready at once: the queue
 * returns it from its next wait. This is how a blocking call on a socket
 * hands the turn to the task waiting behind it (blocking.c): that task may
 * have bytes to take that the socket already holds, which no descriptor
 * readiness would announce. Returns 1, or 0 when the task has no open
 * queue, is scheduled already, or the queue refuses (it is then left as
 * it was). Raises only a memory error, undone first. */
int xpio_schedule_now(lua_State *L, int task) {
    int top = lua_gettop(L);
    task = lua_absindex(L, task);
    xpio_push_name(L, XPIO_NAME_QUEUE);
    lua_rawget(L, task);
    int queue = lua_gettop(L);
    void **slot = xpio_toobject(L, queue, xpio_description.queue_kind);
    xpio_push_name(L, XPIO_NAME_DEQUEUE);
    int scheduled = lua_rawget(L, task) != LUA_TNIL;
    lua_pop(L, 1); /* the queue on top: prepare and the store build above it */
    if (!slot || !*slot || scheduled) {
        lua_settop(L, top);
        return 0;
    }
    xpio_call call;
    prepare(L, queue);
    void *object = *slot;
    int32_t waiter = xpio_queue_reserve(&call, object);
    if (waiter < 0) {
        lua_settop(L, top);
        return 0;
    }
    lua_Integer key = (lua_Integer)waiter + 1;
    if (store_protected(L, queue, task, 0, key) != LUA_OK) {
        xpio_queue_cancel(object, waiter);
        forget_in(L, queue, key); /* the waiters, in the queue's slot */
        clear_fields(L, task);
        return lua_error(L);
    }
    if (xpio_queue_schedule(&call, object, waiter, NULL, XPIO_READABLE) < 0) {
        xpio_queue_cancel(object, waiter);
        forget_in(L, queue, key); /* the waiters, in the queue's slot */
        clear_fields(L, task);
        lua_settop(L, top);
        return 0;
    }
    lua_settop(L, top);
    return 1;
}

/* tqueue:wait(timeout): the ready tasks as a new array, each unscheduled.
 * The array is made before anything changes; if making it fails, the
 * queue returns the same tasks at the next wait. */
int xpio_native_tqueue_wait(lua_State *L) {
    xpio_call call;
    void *object = xpio_object_at(L, 1);
    if (!object) {
        call.message = "tqueue";
        return xpio_push_failure(L, &call, XPIO_CLOSED);
    }
    int has_timeout = lua_isnumber(L, 2); /* checked: a number, or left out */
    int status = xpio_queue_wait(&call, object, has_timeout ? lua_tonumber(L, 2) : 0, has_timeout);
    if (status < 0) return xpio_push_failure(L, &call, status);
    if (status == 0) {
        lua_pushnil(L);
        return 1;
    }
    int32_t count;
    xpio_queue_ready(object, &count);
    lua_createtable(L, count, 0);
    int result = lua_gettop(L);
    /* Read the ready list only now: the allocation above may have run a
     * finalizer that used the queue. Nothing below allocates (the table
     * has its room; clearing fields frees), so no finalizer runs in the
     * loop. A queue made to grow its list meanwhile is taken as it is. */
    const int32_t *ready = xpio_queue_ready(object, &count);
    if (count > 0) {
        lua_getiuservalue(L, 1, 1);
        int waiters = lua_gettop(L);
        lua_Integer n = 0;
        for (int32_t i = 0; i < count; i++) {
            lua_Integer key = (lua_Integer)ready[i] + 1;
            if (lua_rawgeti(L, waiters, task_index(key)) == LUA_TTABLE) {
                clear_fields(L, lua_gettop(L));
                lua_rawseti(L, result, ++n);
            } else {
                lua_pop(L, 1);
            }
            forget_in(L, waiters, key);
        }
    }
    xpio_queue_delivered(object);
    lua_settop(L, result);
    return 1;
}

void xpio_drop_tasks(lua_State *L, int queue) {
    int top = lua_gettop(L);
    queue = lua_absindex(L, queue);
    if (lua_getiuservalue(L, queue, 1) == LUA_TTABLE) {
        int waiters = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, waiters)) {
            /* Tasks are at the odd indices; the objects beside them and the
             * _dequeue function at 0 are never tables. */
            if (lua_istable(L, -1)) clear_fields(L, lua_gettop(L));
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, waiters); /* clearing a field during next is allowed */
        }
    }
    lua_settop(L, top);
}

/* tqueue:close(): the same as __close, but it answers. */
int xpio_native_tqueue_close(lua_State *L) {
    xpio_call call;
    void *object = xpio_object_at(L, 1);
    if (!object || xpio_queue_is_closed(object)) {
        call.message = "tqueue";
        return xpio_push_failure(L, &call, XPIO_CLOSED);
    }
    xpio_drop_tasks(L, 1);
    xpio_queue_close(object);
    lua_pushboolean(L, 1);
    return 1;
}
