/*
 * socket:lines([keep_eol]): a plain iterator over socket:readline, for a
 * generic `for` inside a task. It has no coroutine of its own: each call
 * is a call of the socket's blocking readline, made with lua_callk, so a
 * readline that waits yields the task's own coroutine and the iterator
 * goes on in its continuation. (A coroutine.wrap iterator would wait in a
 * coroutine the scheduler does not know: blocking.c refuses that.)
 */
#include "glue.h"

/* What readline answered, as the iterator's value: a line; at the end of
 * the stream the unterminated last line (readline's `partial`) once, then
 * nil; an error is raised with readline's message as it is, since a `for`
 * cannot return nil, message. */
static int lines_continue(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    int top = lua_gettop(L);
    int first = top - 2; /* readline's three results (lua_callk asked for 3) */
    if (!lua_isnil(L, first)) {
        lua_settop(L, first);
        return 1;
    }
    if (lua_isnil(L, first + 1)) { /* a single nil: the end */
        lua_pushnil(L);
        return 1;
    }
    if (lua_type(L, first + 2) == LUA_TSTRING) { /* nil, "xpio: end of stream", partial */
        lua_pushvalue(L, first + 2);
        return 1;
    }
    lua_pushvalue(L, first + 1);
    return lua_error(L);
}

static int lines_next(lua_State *L) {
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_getfield(L, 1, "readline"); /* the socket's own metatable: no user code */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_callk(L, 2, 3, 0, lines_continue);
    return lines_continue(L, LUA_OK, 0);
}

int xpio_native_socket_lines(lua_State *L) {
    lua_pushvalue(L, 1);
    lua_pushboolean(L, lua_toboolean(L, 2));
    lua_pushcclosure(L, lines_next, 2);
    return 1;
}
