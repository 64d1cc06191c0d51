/*
 * The Lua side of XPIO's C target: the Lua 5.4 headers, inline forms of the
 * Lua macros Swift cannot import, and the trampolines every XPIO function
 * runs through.
 *
 * THE RULE: no longjmp may cross a Swift frame. lua_error, luaL_check*,
 * luaL_error and lua_yield* jump out of the function that calls them; a jump
 * through a Swift frame skips its cleanups (releases, deinits) and is
 * undefined behaviour. So Swift code never calls them. A Swift body (an
 * `xpio_body`) reads arguments that C has already type-checked, does its
 * work, pushes results and returns a status; the C trampoline then returns,
 * raises or yields after the Swift frame is gone. The Lua functions Swift
 * does call (lua_push*, lua_to*, lua_raw*, lua_createtable) raise only when
 * Lua runs out of memory, which no Lua C library can rule out either.
 */
#ifndef XPIO_LUA_H
#define XPIO_LUA_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* What a Swift body returns to its trampoline. */
enum {
    /* n >= 0: n results are on the top of the stack. */
    XPIO_RAISE = -1, /* an error message is on the top: raise it */
    XPIO_RETRY = -2, /* would block: try_ returns nil, "retry"; blocking yields */
    XPIO_ARGERROR = -16 /* XPIO_ARGERROR - k: argument k is bad; the reason is on top */
};

typedef int (*xpio_body)(lua_State *L);

/* Registers the metatable name of object kind `code` ('1'..'9' in signatures). */
void xpio_setkind(int code, const char *metatable);

/* Pushes a function: a closure over the body, its argument signature and
 * its name (for messages). `sig` has one character per argument: s string,
 * i integer, n number, b boolean, t table, a any, 1-9 an object kind; a '?'
 * before one makes it optional (none, nil or false). */
void xpio_pushfunction(lua_State *L, const char *name, const char *sig, xpio_body body);

/* The same, with `n` more upvalues taken from the top of the stack; the body
 * finds them at lua_upvalueindex(4) and up. */
void xpio_pushclosure(lua_State *L, const char *name, const char *sig, xpio_body body, int n);

/* Pushes a blocking function. The `when_` closure is on the top of the
 * stack and becomes an upvalue (popped). */
void xpio_pushblocking(lua_State *L, const char *name, const char *sig, xpio_body attempt);

/* The current task (xpio.setCurrentTask), kept in the registry. */
void xpio_setcurrenttask(lua_State *L, int index);
void xpio_pushcurrenttask(lua_State *L);

/* Pushes the C library's message for `err` (strerror). */
void xpio_pusherrno(lua_State *L, int err);

/* Variadic Lua functions, which Swift cannot call. */
static inline void xpio_pushclosed(lua_State *L, const char *kind) {
    lua_pushfstring(L, "xpio: %s is closed", kind);
}
/* "xpio.socket: fd 7", or "xpio.socket: closed" for a negative fd. */
static inline void xpio_pushdescription(lua_State *L, const char *kind, int fd, const char *what) {
    if (fd >= 0) lua_pushfstring(L, "%s: %s %d", kind, what, fd);
    else lua_pushfstring(L, "%s: closed", kind);
}

/* Macros of lua.h, as functions Swift can call. */
static inline void xpio_pop(lua_State *L, int n) { lua_settop(L, -(n) - 1); }
static inline void xpio_newtable(lua_State *L) { lua_createtable(L, 0, 0); }
static inline int xpio_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int xpio_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int xpio_isnoneornil(lua_State *L, int i) { return lua_type(L, i) <= 0; }
static inline void xpio_pushliteral(lua_State *L, const char *s) { lua_pushstring(L, s); }

#endif
