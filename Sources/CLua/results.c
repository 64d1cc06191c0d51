/*
 * Calling a Swift body and turning its answer into Lua results. Objects a
 * function returns are made before the body runs, so that no allocation
 * (which can fail with a memory error) comes between the body taking a
 * resource (an accepted descriptor, a child) and Lua owning it.
 */
#include "glue.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Every object has one user value: a queue's waiters (tasks.c), any
 * other's the turns of its blocking reads and writes (blocking.c). */
static void **new_object(lua_State *L, int kind) {
    xpio_userdata *made = lua_newuserdatauv(L, sizeof *made, 1);
    made->object = NULL;
    made->kind = &xpio_description.kinds[kind];
    made->line[0].first = made->line[0].next = 1;
    made->line[1].first = made->line[1].next = 1;
    return &made->object;
}

void xpio_make_objects(lua_State *L, const xpio_entry *entry, xpio_call *call) {
    for (int i = 0; i < entry->nobjects; i++) {
        int kind = entry->objects[i];
        void **slot = new_object(L, kind);
        lua_rawgeti(L, XPIO_KINDS_UPVALUE, kind + 1);
        lua_setmetatable(L, -2);
        call->object[i] = slot;
        call->object_slot[i] = lua_gettop(L);
    }
}

/* An object's userdata is a few bytes, and what it holds (a descriptor,
 * buffers) is outside Lua's heap: a program that drops sockets unclosed
 * runs out of descriptors long before the collector runs by itself. So
 * when an attempt to make one finds none left (EMFILE, ENFILE), a full
 * collection closes the dropped objects and the attempt is made again,
 * once. Only bodies that failed without effect answer EMFILE: the socket,
 * the pipe or the accepted connection was never made. */
int32_t xpio_attempt_opening(lua_State *L, xpio_call *call, int32_t (*attempt)(xpio_call *, xpio_args *),
                             xpio_args *args) {
    int32_t status = attempt(call, args);
    if (status != XPIO_ERRNO || (call->code != EMFILE && call->code != ENFILE)) return status;
    lua_gc(L, LUA_GCCOLLECT);
    return attempt(call, args);
}

/* Strings and lists among the results point into memory Swift reuses: the
 * shared read buffer, the address buffers, the list scratch areas. Any
 * allocation while pushing can run a finalizer, and a finalizer can call
 * XPIO and overwrite them. So when a result pointing there would be pushed
 * after an allocation (or is a list: its elements are), every such result
 * is first copied into one malloc'd block, and made into Lua values from
 * the copy under lua_pcall, which frees the block and releases the objects
 * no userdata holds yet whatever happens. A string that comes before any
 * allocation (a read's bytes, recvfrom's) is pushed as it is, first. */

static int is_list(const xpio_value *v) { return v->tag == XPIO_LIST || v->tag == XPIO_OBJECTS; }
static int points_out(const xpio_value *v) { return v->tag == XPIO_STRING || is_list(v); }

static int needs_copy(const xpio_call *call, int status) {
    int allocated = 0;
    for (int i = 0; i < status; i++) {
        const xpio_value *v = &call->result[i];
        if (is_list(v) || (v->tag == XPIO_STRING && allocated)) return 1;
        if (v->tag == XPIO_STRING || v->tag == XPIO_CASE) allocated = 1;
    }
    return 0;
}

static void release_objects(const xpio_value *v) {
    void **list = (void **)v->u.list;
    for (int32_t i = 0; i < v->count; i++) {
        if (list[i]) xpio_description.kinds[v->length].release(list[i]);
        list[i] = NULL;
    }
}

static void release_all_objects(xpio_call *call, int status) {
    for (int i = 0; i < status; i++)
        if (call->result[i].tag == XPIO_OBJECTS) release_objects(&call->result[i]);
}

static size_t string_bytes(const xpio_value *v) { return v->tag == XPIO_STRING ? v->length : 0; }

/* Copies string `v` to *cursor and points `v` at the copy. */
static void move_string(xpio_value *v, char **cursor) {
    if (v->length) memcpy(*cursor, v->u.string, v->length);
    v->u.string = *cursor;
    *cursor += v->length;
}

/* Points each result of `call` that points out, but result `direct`, at
 * a copy in a new block (lists with their string elements); NULL when
 * malloc fails. */
static char *copy_results(xpio_call *call, int status, int direct) {
    size_t arrays = 0, text = 0;
    for (int i = 0; i < status; i++) {
        if (i == direct) continue;
        const xpio_value *v = &call->result[i];
        text += string_bytes(v);
        if (v->tag == XPIO_OBJECTS) arrays += (size_t)v->count * sizeof(void *);
        if (v->tag != XPIO_LIST) continue;
        arrays += (size_t)v->count * sizeof(xpio_value);
        for (int32_t j = 0; j < v->count; j++) text += string_bytes(&v->u.list[j]);
    }
    char *block = malloc(arrays + text + 1);
    if (!block) return NULL;
    char *array = block, *bytes = block + arrays;
    for (int i = 0; i < status; i++) {
        if (i == direct) continue;
        xpio_value *v = &call->result[i];
        if (v->tag == XPIO_STRING) move_string(v, &bytes);
        if (!is_list(v)) continue;
        size_t size = (size_t)v->count * (v->tag == XPIO_OBJECTS ? sizeof(void *) : sizeof(xpio_value));
        if (size) memcpy(array, v->u.list, size);
        v->u.list = (xpio_value *)(void *)array;
        array += size;
        if (v->tag != XPIO_LIST) continue;
        for (int32_t j = 0; j < v->count; j++)
            if (v->u.list[j].tag == XPIO_STRING) move_string(&v->u.list[j], &bytes);
    }
    return block;
}

static void push_value(lua_State *L, const xpio_call *call, const xpio_value *value);

/* Under lua_pcall: the result pushed directly (-1: none), then the Lua
 * value of each copied result, in order. Each object leaves the copy when
 * its userdata holds it. Arguments: the call, the number of results, the
 * kinds table, the result pushed directly. */
static int make_copied(lua_State *L) {
    xpio_call *call = lua_touserdata(L, 1);
    int status = (int)lua_tointeger(L, 2);
    int direct = (int)lua_tointeger(L, 4);
    if (direct >= 0) lua_pushlstring(L, call->result[direct].u.string, call->result[direct].length);
    for (int i = 0; i < status; i++) {
        if (i == direct) continue;
        xpio_value *v = &call->result[i];
        if (v->tag == XPIO_STRING) lua_pushlstring(L, v->u.string, v->length);
        if (!is_list(v)) continue;
        lua_createtable(L, v->count, 0);
        for (int32_t j = 0; j < v->count; j++) {
            if (v->tag == XPIO_LIST) {
                push_value(L, call, &v->u.list[j]);
            } else {
                int kind = (int)v->length;
                void **slot = new_object(L, kind);
                lua_rawgeti(L, 3, kind + 1);
                lua_setmetatable(L, -2);
                void **list = (void **)v->u.list;
                *slot = list[j];
                list[j] = NULL;
            }
            lua_rawseti(L, -2, j + 1);
        }
    }
    return lua_gettop(L) - 4;
}

/* Makes the results that point out, when they must be copied (see above):
 * their values end on the stack, and `made` gets each one's index (0 for
 * the other results). */
static void push_copied(lua_State *L, xpio_call *call, int status, int made[]) {
    for (int i = 0; i < status; i++) made[i] = 0;
    if (!needs_copy(call, status)) return;
    int direct = -1, copied = 0;
    for (int i = 0; i < status && direct < 0; i++) {
        int tag = call->result[i].tag;
        if (tag == XPIO_STRING) direct = i;
        else if (tag == XPIO_CASE || is_list(&call->result[i])) break;
    }
    for (int i = 0; i < status; i++) copied += points_out(&call->result[i]);
    char *block = copy_results(call, status, direct);
    if (!block) {
        release_all_objects(call, status);
        luaL_error(L, "not enough memory");
    }
    lua_pushcfunction(L, make_copied);
    lua_pushlightuserdata(L, call);
    lua_pushinteger(L, status);
    lua_pushvalue(L, XPIO_KINDS_UPVALUE);
    lua_pushinteger(L, direct);
    int failed = lua_pcall(L, 4, copied, 0) != LUA_OK;
    release_all_objects(call, status);
    free(block);
    if (failed) lua_error(L);
    int index = lua_gettop(L) - copied;
    if (direct >= 0) made[direct] = ++index;
    for (int i = 0; i < status; i++) if (i != direct && points_out(&call->result[i])) made[i] = ++index;
}

static void push_value(lua_State *L, const xpio_call *call, const xpio_value *value) {
    switch (value->tag) {
    case XPIO_BOOLEAN: lua_pushboolean(L, (int)value->u.integer); break;
    case XPIO_INTEGER: lua_pushinteger(L, (lua_Integer)value->u.integer); break;
    case XPIO_NUMBER: lua_pushnumber(L, (lua_Number)value->u.number); break;
    case XPIO_STRING: lua_pushlstring(L, value->u.string, value->length); break;
    case XPIO_OBJECT: lua_pushvalue(L, call->object_slot[value->count]); break;
    case XPIO_CASE: lua_pushstring(L, xpio_description.enums[value->length]->cases[value->count]); break;
    case XPIO_ARGUMENT: lua_pushvalue(L, value->u.index); break;
    /* (lists are made by push_copied) */
    default: lua_pushnil(L); break;
    }
}

int xpio_push_failure(lua_State *L, xpio_call *call, int status) {
    switch (status) {
    case XPIO_RETRY: lua_pushnil(L); xpio_push_name(L, XPIO_NAME_RETRY); return 2;
    case XPIO_ERRNO: lua_pushnil(L); lua_pushstring(L, strerror(call->code)); return 2;
    case XPIO_MESSAGE: lua_pushnil(L); lua_pushstring(L, call->message); return 2;
    case XPIO_CLOSED: lua_pushnil(L); lua_pushfstring(L, "xpio: %s is closed", call->message); return 2;
    case XPIO_ARGERROR: return xpio_argerror(L, call->code, call->message);
    default: return luaL_error(L, "%s", call->message);
    }
}

int xpio_finish(lua_State *L, xpio_call *call, int status) {
    if (status < 0) return xpio_push_failure(L, call, status);
    /* One result that is no list (a count, a string, a flag): nothing to
     * order, as most calls answer. */
    if (status == 1 && !is_list(&call->result[0])) {
        push_value(L, call, &call->result[0]);
        return 1;
    }
    /* Lists first (objects own resources until they are userdata, and
     * pushing a plain value before them could fail and lose them), with
     * every string a finalizer could overwrite; a failure of a later push
     * only leaves garbage. */
    int made[XPIO_MAX_RESULTS];
    push_copied(L, call, status, made);
    for (int i = 0; i < status; i++) {
        if (made[i]) lua_pushvalue(L, made[i]);
        else push_value(L, call, &call->result[i]);
    }
    return status;
}

int xpio_push_unknown(lua_State *L, const char *message) {
    lua_pushnil(L);
    lua_pushstring(L, message);
    return 2;
}
