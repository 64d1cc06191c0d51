/*
 * The trampolines: the only place where XPIO raises Lua errors or yields.
 * See the rule at the top of xpio_lua.h.
 */
#include "xpio_lua.h"
#include <string.h>

static const char *kind_names[10];
static const char current_task_key = 'T';

void xpio_setkind(int code, const char *metatable) {
    if (code >= 1 && code <= 9) kind_names[code] = metatable;
}

/* Like luaL_argerror, but names the function by its XPIO name even when the
 * call site gives none (pcall(f, ...)), and counts arguments as the caller
 * wrote them: in a method call (s:bind(x)) self is not counted. */
static int arg_error(lua_State *L, int arg, const char *extramsg) {
    const char *name = lua_tostring(L, lua_upvalueindex(3));
    lua_Debug ar;
    if (lua_getstack(L, 0, &ar)) {
        lua_getinfo(L, "n", &ar);
        if (ar.namewhat && strcmp(ar.namewhat, "method") == 0) {
            arg--;
            if (arg == 0) return luaL_error(L, "calling '%s' on bad self (%s)", name, extramsg);
        }
    }
    return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, extramsg);
}

static int type_error(lua_State *L, int arg, const char *expected) {
    const char *actual;
    if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING) actual = lua_tostring(L, -1);
    else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA) actual = "light userdata";
    else actual = luaL_typename(L, arg);
    return arg_error(L, arg, lua_pushfstring(L, "%s expected, got %s", expected, actual));
}

static int is_kind(lua_State *L, int arg, const char *metatable) {
    if (!lua_getmetatable(L, arg)) return 0;
    luaL_getmetatable(L, metatable);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

/* Checks the arguments against the signature; raises on the first bad one.
 * Then sets the stack to exactly one slot per declared argument (nil for a
 * missing one, extra ones dropped), so bodies may push above them. */
static void check_args(lua_State *L, const char *sig) {
    int arg = 1;
    for (const char *p = sig; *p; p++, arg++) {
        int optional = (*p == '?');
        if (optional) p++;
        int type = lua_type(L, arg);
        if (optional && (type <= LUA_TNIL || (type == LUA_TBOOLEAN && !lua_toboolean(L, arg)))) continue;
        switch (*p) {
        case 's':
            if (type == LUA_TNUMBER) lua_tolstring(L, arg, NULL); /* convert in place, as luaL_checklstring */
            else if (type != LUA_TSTRING) type_error(L, arg, "string");
            break;
        case 'i': {
            int isnum;
            lua_tointegerx(L, arg, &isnum);
            if (!isnum) {
                if (lua_isnumber(L, arg)) arg_error(L, arg, "number has no integer representation");
                else type_error(L, arg, "number");
            }
            break;
        }
        case 'n':
            if (!lua_isnumber(L, arg)) type_error(L, arg, "number");
            break;
        case 'b':
            if (type != LUA_TBOOLEAN) type_error(L, arg, "boolean");
            break;
        case 't':
            if (type != LUA_TTABLE) type_error(L, arg, "table");
            break;
        case 'a':
            break;
        default: {
            const char *metatable = kind_names[*p - '0'];
            if (type != LUA_TUSERDATA || !is_kind(L, arg, metatable)) type_error(L, arg, metatable);
        }
        }
    }
    lua_settop(L, arg - 1);
}

/* Turns a body's status into the function's results, or raises. */
static int finish(lua_State *L, int status) {
    if (status >= 0) return status;
    if (status == XPIO_RETRY) {
        lua_pushnil(L);
        lua_pushliteral(L, "retry");
        return 2;
    }
    if (status == XPIO_RAISE) return lua_error(L);
    return arg_error(L, XPIO_ARGERROR - status, lua_tostring(L, -1));
}

static int call_function(lua_State *L) {
    check_args(L, lua_tostring(L, lua_upvalueindex(2)));
    xpio_body body = (xpio_body)lua_touserdata(L, lua_upvalueindex(1));
    return finish(L, body(L));
}

void xpio_pushfunction(lua_State *L, const char *name, const char *sig, xpio_body body) {
    xpio_pushclosure(L, name, sig, body, 0);
}

void xpio_pushclosure(lua_State *L, const char *name, const char *sig, xpio_body body, int n) {
    lua_pushlightuserdata(L, (void *)body);
    lua_pushstring(L, sig);
    lua_pushstring(L, name);
    lua_rotate(L, -(n + 3), 3); /* the three go below the extra upvalues */
    lua_pushcclosure(L, call_function, 3 + n);
}

/*
 * A blocking function: try; on "retry", schedule the current task with the
 * when_ partner (upvalue 4) and yield; when resumed, try again. The yield is
 * the last statement of the C function and its continuation re-enters the
 * loop, so no Swift frame is ever live across it.
 */
static int blocking_loop(lua_State *L, int nargs);

static int blocking_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    lua_settop(L, (int)ctx); /* drop whatever resume passed */
    return blocking_loop(L, (int)ctx);
}

static int blocking_loop(lua_State *L, int nargs) {
    xpio_body attempt = (xpio_body)lua_touserdata(L, lua_upvalueindex(1));
    int status = attempt(L);
    if (status != XPIO_RETRY) return finish(L, status);
    xpio_pushcurrenttask(L);
    int task = lua_gettop(L);
    /* A current task that is still scheduled (a scheduler resumed it early
     * without calling task:_dequeue()) makes when_ raise "already scheduled". */
    lua_pushvalue(L, lua_upvalueindex(4));
    lua_pushvalue(L, 1);
    lua_pushvalue(L, task);
    lua_call(L, 2, 2);
    if (!lua_toboolean(L, -2)) return 2; /* the when_ partner failed: return its nil, message */
    lua_settop(L, nargs);
    return lua_yieldk(L, 0, (lua_KContext)nargs, blocking_continue);
}

/* A blocking function checks its arguments, then needs a coroutine and a
 * current task even when it could complete at once: a program must not work
 * only while data happens to be there. */
static int call_blocking(lua_State *L) {
    check_args(L, lua_tostring(L, lua_upvalueindex(2)));
    const char *name = lua_tostring(L, lua_upvalueindex(3));
    if (!lua_isyieldable(L))
        return luaL_error(L, "xpio: %s must be called from a coroutine (use try_%s outside one)", name, name);
    xpio_pushcurrenttask(L);
    int has_task = lua_istable(L, -1);
    lua_pop(L, 1);
    if (!has_task) return luaL_error(L, "xpio: %s needs a current task (xpio.setCurrentTask)", name);
    return blocking_loop(L, lua_gettop(L));
}

void xpio_pushblocking(lua_State *L, const char *name, const char *sig, xpio_body attempt) {
    lua_pushlightuserdata(L, (void *)attempt);
    lua_pushstring(L, sig);
    lua_pushstring(L, name);
    lua_rotate(L, -4, -1); /* the when_ closure goes last */
    lua_pushcclosure(L, call_blocking, 4);
}

void xpio_setcurrenttask(lua_State *L, int index) {
    lua_pushvalue(L, index);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &current_task_key);
}

void xpio_pushcurrenttask(lua_State *L) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &current_task_key);
}

void xpio_pusherrno(lua_State *L, int err) {
    lua_pushstring(L, strerror(err));
}
