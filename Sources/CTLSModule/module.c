/*
 * luaopen_xpio_tls: what `require "xpio.tls"` runs. It loads xpio.so (by
 * `require "xpio"`, so both come from the same package.cpath) and hands it
 * this module's engine; xpio.so checks that both were built from the same
 * version and answers the `xpio.tls` table, built from Spec/tls.spec like
 * the rest of its API. Nothing of Lua is in the engine itself.
 */
#include <lua.h>
#include <lauxlib.h>
#include "xpio_tls_abi.h"
#include "xpio_tls_module.h"

int luaopen_xpio_tls(lua_State *L) {
    lua_getglobal(L, "require");
    lua_pushliteral(L, "xpio");
    lua_call(L, 1, 1);
    lua_pop(L, 1);
    if (lua_getfield(L, LUA_REGISTRYINDEX, "xpio.tls.install") != LUA_TFUNCTION)
        return luaL_error(L, "xpio.tls: the xpio module loaded has no TLS support (an older xpio.so?)");
    lua_pushlightuserdata(L, (void *)xpio_tls_engine());
    lua_call(L, 1, 1);
    return 1;
}
