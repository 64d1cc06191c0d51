/*
 * Calling a Swift body and turning its answer into Lua results. Objects a
 * function returns are made before the body runs, so that no allocation
 * (which can fail with a memory error) comes between the body taking a
 * resource (an accepted descriptor, a child) and Lua owning it.
 */
#include "glue.h"
#include <string.h>

void xpio_make_objects(lua_State *L, const xpio_entry *entry, xpio_call *call) {
    const char *objects = entry->objects;
    for (int i = 0; objects && objects[i]; i++) {
        int kind = objects[i] - '@';
        void **slot = lua_newuserdatauv(L, sizeof(void *), xpio_description->kinds[kind].holds_tasks ? 3 : 0);
        *slot = NULL;
        lua_rawgeti(L, XPIO_KINDS_UPVALUE, kind + 1);
        lua_setmetatable(L, -2);
        call->object[i] = slot;
        call->object_slot[i] = lua_gettop(L);
    }
}

/* The objects of an XPIO_OBJECTS result as a new array, made under
 * lua_pcall: each object leaves the list when its userdata holds it, and
 * those still in the list when making one fails (a memory error) are
 * released, so none leaks. Arguments: the value, the kinds table. */
static int make_objects(lua_State *L) {
    xpio_value *value = lua_touserdata(L, 1);
    void **list = (void **)value->u.list;
    int kind = (int)value->length;
    lua_createtable(L, value->count, 0);
    for (int32_t i = 0; i < value->count; i++) {
        void **slot = lua_newuserdatauv(L, sizeof(void *), xpio_description->kinds[kind].holds_tasks ? 3 : 0);
        *slot = NULL;
        lua_rawgeti(L, 2, kind + 1);
        lua_setmetatable(L, -2);
        *slot = list[i];
        list[i] = NULL;
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static void push_objects(lua_State *L, const xpio_value *value) {
    lua_pushcfunction(L, make_objects);
    lua_pushlightuserdata(L, (void *)value);
    lua_pushvalue(L, XPIO_KINDS_UPVALUE);
    if (lua_pcall(L, 2, 1, 0) == LUA_OK) return;
    void **list = (void **)value->u.list;
    for (int32_t i = 0; i < value->count; i++) {
        if (list[i]) xpio_description->kinds[value->length].release(list[i]);
        list[i] = NULL;
    }
    lua_error(L);
}

static void push_value(lua_State *L, const xpio_call *call, const xpio_value *value) {
    switch (value->tag) {
    case XPIO_BOOLEAN: lua_pushboolean(L, (int)value->u.integer); break;
    case XPIO_INTEGER: lua_pushinteger(L, (lua_Integer)value->u.integer); break;
    case XPIO_NUMBER: lua_pushnumber(L, (lua_Number)value->u.number); break;
    case XPIO_STRING: lua_pushlstring(L, value->u.string, value->length); break;
    case XPIO_OBJECT: lua_pushvalue(L, call->object_slot[value->count]); break;
    case XPIO_CASE: lua_pushstring(L, xpio_description->enums[value->length].cases[value->count]); break;
    case XPIO_SLOT: lua_pushvalue(L, value->u.index); break;
    case XPIO_OBJECTS: push_objects(L, value); break; /* (xpio_finish makes these first) */
    case XPIO_LIST:
        lua_createtable(L, value->count, 0);
        for (int32_t i = 0; i < value->count; i++) {
            push_value(L, call, &value->u.list[i]);
            lua_rawseti(L, -2, i + 1);
        }
        break;
    default: lua_pushnil(L); break;
    }
}

int xpio_push_failure(lua_State *L, xpio_call *call, int status) {
    switch (status) {
    case XPIO_RETRY: lua_pushnil(L); lua_pushliteral(L, "retry"); return 2;
    case XPIO_ERRNO: lua_pushnil(L); lua_pushstring(L, strerror(call->code)); return 2;
    case XPIO_MESSAGE: lua_pushnil(L); lua_pushstring(L, call->message); return 2;
    case XPIO_CLOSED: lua_pushnil(L); lua_pushfstring(L, "xpio: %s is closed", call->message); return 2;
    case XPIO_ARGERROR: return xpio_argerror(L, call->code, call->message);
    default: return luaL_error(L, "%s", call->message);
    }
}

int xpio_finish(lua_State *L, xpio_call *call, int status) {
    if (status < 0) return xpio_push_failure(L, call, status);
    /* Lists of objects first: they own resources until they are userdata,
     * and pushing a plain value before them could fail (memory) and lose
     * them. Once made, a failure of a later push only leaves garbage. */
    int made[XPIO_MAX_RESULTS];
    for (int i = 0; i < status; i++) {
        made[i] = 0;
        if (call->result[i].tag == XPIO_OBJECTS) {
            push_objects(L, &call->result[i]);
            made[i] = lua_gettop(L);
        }
    }
    for (int i = 0; i < status; i++) {
        if (made[i]) lua_pushvalue(L, made[i]);
        else push_value(L, call, &call->result[i]);
    }
    return status;
}

int xpio_call_function(lua_State *L) {
    const xpio_entry *entry = xpio_current_entry(L);
    xpio_call call;
    int status = xpio_decode(L, entry, &call);
    if (status) return xpio_push_failure(L, &call, status);
    xpio_make_objects(L, entry, &call);
    return xpio_finish(L, &call, entry->body(&call));
}
