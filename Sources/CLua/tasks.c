/*
 * Tasks on task queues: the Lua half. The runtime's queue knows waiters by
 * id; a queue's userdata keeps one user value, the waiters: at 1 the
 * queue's _dequeue function, and for waiter id w the task at 2w + 2 and
 * the object it waits on at 2w + 3 (kept alive while the task waits), all
 * in the array part (every when_ reads the function: at 0, in the hash
 * part, that read cost twice as much). One table, so storing and
 * forgetting a waiter reads one user value; one user value, as every
 * object has (a second one would cost every socket 16 bytes).
 * Task fields are read and written raw: a queue never runs user code.
 *
 * Every change that allocates (and so can fail with a memory error) comes
 * before the runtime commits, and every change after it only clears fields
 * that exist, which never allocates: a call either completes or leaves the
 * queue as it was. The task is stored under the id the runtime will hand
 * out next (xpio_queue_next_waiter) and the runtime takes it only after
 * the stores, so no store needs undoing and none runs under lua_pcall
 * (which cost a quarter of a when_ call). Nothing runs between the two:
 * the stores call no finalizer (Lua runs none in a raw set, nor in the
 * emergency collection of a failed allocation).
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

/* Where waiter `key` (its id + 1) keeps its task in the waiters table;
 * its object is at the next index. */
static lua_Integer task_index(lua_Integer key) { return 2 * key; }

/* A task's _dequeuedata: its waiter key in the low 32 bits, and above them
 * (31 bits of) the serial number the runtime gave this scheduling, so that
 * data kept from an earlier scheduling under the same key names nothing. */
static lua_Integer dequeue_data(lua_Integer key, uint32_t serial) {
    return key | ((lua_Integer)(serial & 0x7fffffff) << 32);
}

/* Clears waiter `key` in the waiters table at `waiters`: false, not nil,
 * so the two places stay in the table (a rehash keeps only what is not
 * nil) and storing the next task under the key cannot allocate
 * (store_task). The table stays as large as the most waiters the queue
 * ever had at once. */
static void forget_in(lua_State *L, int waiters, lua_Integer key) {
    lua_pushboolean(L, 0);
    lua_rawseti(L, waiters, task_index(key));
    lua_pushboolean(L, 0);
    lua_rawseti(L, waiters, task_index(key) + 1);
}

static void *queue_object(lua_State *L, int index) {
    void **slot = lua_touserdata(L, index);
    return slot ? *slot : NULL;
}

/* task:_dequeue(), or task._dequeue(task._dequeuedata): the queue is
 * upvalue 1, the kinds and the names after it, as in every entry;
 * the data names the task's waiter key and its scheduling (dequeue_data).
 * Returns true, or nothing when the task is not scheduled on this queue
 * (or, given data, when the data is not the scheduled task's: one kept
 * from an earlier scheduling). Anything else as the argument is an
 * error: a silent no-op would leave the task scheduled. */
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
    lua_Integer data = lua_tointegerx(L, -1, &isinteger);
    lua_Integer key = data & 0xffffffff;
    if (!isinteger || data < 1 || key < 1 || key > INT32_MAX) return 0;
    if (lua_getiuservalue(L, queue, 1) != LUA_TTABLE) return 0;
    int waiters = lua_gettop(L);
    if (lua_rawgeti(L, waiters, task_index(key)) != LUA_TTABLE) return 0;
    int task = lua_gettop(L);
    if (by_task) {
        if (!lua_rawequal(L, task, 1)) return 0;
    } else {
        xpio_push_name(L, XPIO_NAME_DEQUEUEDATA);
        lua_rawget(L, task);
        int same = lua_isinteger(L, -1) && lua_tointeger(L, -1) == data;
        lua_pop(L, 1);
        if (!same) return 0;
    }
    xpio_queue_cancel(object, (int32_t)(key - 1));
    forget_in(L, waiters, key);
    clear_fields(L, task);
    lua_pushboolean(L, 1);
    return 1;
}

/* Pushes the queue's waiters table and its _dequeue function, made on
 * first use (and again after a close dropped them, or after the debug
 * library put something else there: store_task reads the function's
 * upvalue, so it must be this module's closure). A table made or mended
 * here gets a place for every waiter id the runtime has handed out, where
 * it has none: store_task makes places only for a new id. */
static void prepare(lua_State *L, int queue, void *object) {
    if (lua_getiuservalue(L, queue, 1) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_createtable(L, 2 * (int)xpio_queue_ids_used(object) + 1, 0);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, queue, 1);
    }
    int waiters = lua_gettop(L);
    if (lua_rawgeti(L, waiters, 1) != LUA_TFUNCTION || lua_tocfunction(L, -1) != dequeue) {
        lua_pop(L, 1);
        lua_Integer places = 2 * (lua_Integer)xpio_queue_ids_used(object) + 1;
        for (lua_Integer i = 2; i <= places; i++) {
            if (lua_rawgeti(L, waiters, i) == LUA_TNIL) {
                lua_pushboolean(L, 0);
                lua_rawseti(L, waiters, i);
            }
            lua_pop(L, 1);
        }
        lua_pushvalue(L, queue);
        xpio_push_closure(L, dequeue, XPIO_KINDS_UPVALUE);
        lua_pushvalue(L, -1);
        lua_rawseti(L, waiters, 1);
    }
}

/* Stores the task (at `task`) and the object it waits on (at `object`, or
 * none: 0) under waiter key `key` in the waiters table (at `waiters`), and
 * the task's _dequeuedata and _dequeue (the function at `fn`): the steps of
 * scheduling that allocate. The runtime has not handed the key out yet, so
 * a memory error raised here must leave nothing that matters: the waiters'
 * two places exist first, holding false (made here for a key never used,
 * left so by forget_in for any other); then the fields, _dequeue last
 * (without it the task is not scheduled); then the places get their values,
 * which overwrites and never allocates. A raise leaves at most two falses
 * (which hold nothing alive, and the next task given the key overwrites)
 * and a _dequeuedata nobody reads. */
static void store_task(lua_State *L, int waiters, int fn, int task, int object, lua_Integer key, uint32_t serial,
                       int is_new) {
    /* A key used before holds false in both places (forget_in, or prepare
     * for a table made after the ids were used): they exist, and only a
     * new key needs them made. */
    if (is_new) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, waiters, task_index(key) + 1);
        lua_pushboolean(L, 0);
        lua_rawseti(L, waiters, task_index(key));
    }
    xpio_push_name(L, XPIO_NAME_DEQUEUEDATA);
    lua_pushinteger(L, dequeue_data(key, serial));
    lua_rawset(L, task);
    xpio_push_name(L, XPIO_NAME_DEQUEUE);
    lua_pushvalue(L, fn);
    lua_rawset(L, task);
    lua_pushvalue(L, task);
    lua_rawseti(L, waiters, task_index(key));
    if (object) lua_pushvalue(L, object);
    else lua_pushnil(L);
    lua_rawseti(L, waiters, task_index(key) + 1);
}

/* Undoes store_task once it has completed (the runtime refused the
 * waiter): clears what exists, which never allocates. */
static void unstore_task(lua_State *L, int waiters, int task, lua_Integer key) {
    forget_in(L, waiters, key);
    clear_fields(L, task);
}

/* The runtime handed out another id than the one it named beforehand
 * (xpio_queue_next_waiter): it cannot, with no code run between the two;
 * if it ever did, the waiter goes back and the call raises rather than
 * wake the wrong task. */
static int unexpected_waiter(lua_State *L, void *queue, int32_t waiter) {
    xpio_queue_cancel(queue, waiter);
    return luaL_error(L, "xpio: internal error: the task queue handed out an unexpected waiter id");
}

/* The task at `task` waits on its _queue for what `target` answers from
 * the checked `args` (a when_ body: a descriptor and a readiness, or
 * nothing: ready at once), the object at `object` (0: none) kept alive
 * while it waits. Pushes true, or nil and a message; raises when the task
 * is scheduled already or its _queue is no tqueue. A when_ entry's
 * function (Glue.c) calls it; so does a blocking call that must wait
 * (blocking.c), with its when_ partner's body on its own arguments. */
int xpio_wait_with(lua_State *L, int32_t (*target)(xpio_call *, xpio_args *), xpio_args *args, int task, int object) {
    xpio_call call;
    xpio_push_name(L, XPIO_NAME_QUEUE);
    lua_rawget(L, task);
    int queue = lua_gettop(L);
    void **slot = xpio_toobject(L, queue, xpio_description.queue_kind);
    if (!slot) return xpio_argerror(L, task, "task._queue is not a tqueue");
    xpio_push_name(L, XPIO_NAME_DEQUEUE);
    if (lua_rawget(L, task) != LUA_TNIL) return luaL_error(L, "xpio: task is already scheduled");
    int below = lua_gettop(L); /* that nil, left: prepare pushes above it */
    if (!*slot) {
        call.message = "tqueue";
        return xpio_push_failure(L, &call, XPIO_CLOSED);
    }

    int status = target(&call, args);
    if (status < 0) return xpio_push_failure(L, &call, status);
    int targeted = status > 0 && call.result[0].tag == XPIO_TARGET;
    void *waits_on = targeted ? call.result[0].u.object : NULL;
    int readiness = targeted ? (int)call.result[1].u.integer : XPIO_READABLE; /* nothing: ready at once */
    if (targeted && !waits_on) {
        /* Parked on the object itself (blocking.c's behind_target): it must
         * be open, or the waiter would wait for nothing. */
        waits_on = object ? xpio_object_at(L, object) : NULL;
        if (!waits_on) {
            call.message = "socket";
            return xpio_push_failure(L, &call, XPIO_CLOSED);
        }
    }

    void *queue_object = *slot;
    prepare(L, queue, queue_object);
    int32_t is_new;
    uint32_t serial;
    lua_Integer key = (lua_Integer)xpio_queue_next_waiter(queue_object, &is_new, &serial) + 1;
    store_task(L, below + 1, below + 2, task, object, key, serial, is_new);
    int32_t waiter = xpio_queue_schedule(&call, queue_object, waits_on, readiness);
    if (waiter != key - 1) {
        unstore_task(L, below + 1, task, key);
        if (waiter >= 0) return unexpected_waiter(L, queue_object, waiter);
        return xpio_push_failure(L, &call, waiter);
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
 * it was). Raises only a memory error, which leaves the task unscheduled
 * (store_task). */
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
    void *object = *slot;
    prepare(L, queue, object);
    int32_t is_new;
    uint32_t serial;
    lua_Integer key = (lua_Integer)xpio_queue_next_waiter(object, &is_new, &serial) + 1;
    store_task(L, queue + 1, queue + 2, task, 0, key, serial, is_new);
    int32_t waiter = xpio_queue_schedule(&call, object, NULL, XPIO_READABLE);
    if (waiter != key - 1) {
        unstore_task(L, queue + 1, task, key);
        if (waiter >= 0) return unexpected_waiter(L, object, waiter);
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
    int has_timeout; /* checked: a number, or left out */
    lua_Number timeout = lua_tonumberx(L, 2, &has_timeout);
    int status = xpio_queue_wait(&call, object, timeout, has_timeout);
    if (status < 0) return xpio_push_failure(L, &call, status);
    if (status == 0) {
        lua_pushnil(L);
        return 1;
    }
    int32_t count = status - 1;
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
            /* Tasks are at the even indices; the objects beside them and
             * the _dequeue function at 1 are never tables. */
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
