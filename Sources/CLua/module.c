/*
 * luaopen_xpio: builds the module table and one metatable per object kind
 * from the description the generator emitted from Spec/ (Glue.c).
 */
#include "glue.h"
#include <string.h>

void xpio_push_closure(lua_State *L, lua_CFunction f, int kinds) {
    kinds = lua_absindex(L, kinds);
    luaL_checkstack(L, XPIO_NUPVALUES, NULL);
    lua_pushvalue(L, kinds);
    for (int i = 0; i < XPIO_NNAMES; i++) lua_rawgeti(L, kinds, xpio_name_index(i));
    lua_pushcclosure(L, f, XPIO_NUPVALUES);
}

/* Pushes the Lua function for `entry`; `kinds` is the metatables array. */
static void push_function(lua_State *L, const xpio_entry *entry, int kinds) {
    lua_pushlightuserdata(L, (void *)entry);
    switch (entry->role) {
    case XPIO_BLOCKING: xpio_push_closure(L, xpio_call_blocking, kinds); break;
    default: xpio_push_closure(L, entry->function, kinds); break;
    }
}

static void fill(lua_State *L, const xpio_entry *entries, int32_t count, int kinds, int table) {
    for (int32_t i = 0; i < count; i++) {
        push_function(L, &entries[i], kinds);
        if (entries[i].role == XPIO_FIELD) lua_call(L, 0, 1);
        lua_setfield(L, table, entries[i].name);
    }
}

/* The object at 1 as its kind's Swift object, or NULL (another value, or
 * already collected); the kind is upvalue 1. */
static void *self_object(lua_State *L, const xpio_kind **kind, void ***slot) {
    *kind = (const xpio_kind *)lua_touserdata(L, lua_upvalueindex(1));
    *slot = xpio_toobject(L, 1, (int)(*kind - xpio_description.kinds));
    return *slot ? **slot : NULL;
}

/* __close and __gc do what the kind's close does, answering nothing; __gc
 * then drops the reference the userdata held. */
static int dispose(lua_State *L, int release) {
    const xpio_kind *kind;
    void **slot;
    void *object = self_object(L, &kind, &slot);
    if (!object) return 0;
    if (kind->holds_tasks) xpio_drop_tasks(L, 1);
    kind->close(object);
    if (release) {
        *slot = NULL;
        kind->release(object);
    }
    return 0;
}

static int meta_gc(lua_State *L) { return dispose(L, 1); }
static int meta_close(lua_State *L) { return dispose(L, 0); }

/* "xpio.socket: fd 7", "xpio.tqueue: poll", or "xpio.socket: closed". */
static int meta_tostring(lua_State *L) {
    const xpio_kind *kind;
    void **slot;
    xpio_call call;
    void *object = self_object(L, &kind, &slot);
    int status = object ? kind->describe(object, &call) : 0;
    if (status < 1 || call.result[0].tag != XPIO_STRING) lua_pushfstring(L, "%s: closed", kind->metatable);
    else if (status > 1 && call.result[1].tag == XPIO_INTEGER)
        lua_pushfstring(L, "%s: %s %I", kind->metatable, call.result[0].u.string, (lua_Integer)call.result[1].u.integer);
    else lua_pushfstring(L, "%s: %s", kind->metatable, call.result[0].u.string);
    return 1;
}

static void set_metamethod(lua_State *L, const xpio_kind *kind, int kinds, const char *name, lua_CFunction f) {
    lua_pushlightuserdata(L, (void *)kind);
    xpio_push_closure(L, f, kinds);
    lua_setfield(L, -2, name);
}

static const char closing_key = 'C';

/* The state is closing (a sentinel's __gc): let go of what XPIO keeps for
 * the process beyond its objects (the resolver's finished requests). */
static int module_closing(lua_State *L) {
    (void)L;
    xpio_stop();
    return 0;
}

/* The table of submodule `name`, its functions made like the module's. */
static void push_submodule(lua_State *L, const char *name, int kinds) {
    const xpio_module *m = &xpio_description;
    for (int32_t i = 0; i < m->nsubmodules; i++) {
        if (strcmp(m->submodules[i].name, name) != 0) continue;
        lua_createtable(L, 0, m->submodules[i].nfunctions);
        fill(L, m->submodules[i].functions, m->submodules[i].nfunctions, kinds, lua_gettop(L));
        return;
    }
    lua_newtable(L);
}

/* xpio.tls.install(engine): xpio/tls.so hands over its TLS engine (an
 * xpio_tls_provider, Sources/CTLSABI) and gets the `xpio.tls` table. The
 * two must come from one XPIO version: their structures are each other's. */
static int install_tls(lua_State *L) {
    const xpio_tls_provider *provider = lua_touserdata(L, 1);
    if (!provider) return luaL_error(L, "xpio.tls: no TLS engine given");
    if (provider->abi != XPIO_TLS_ABI || strcmp(provider->version, XPIO_VERSION) != 0)
        return luaL_error(L, "xpio.tls: xpio/tls.so is version %s but xpio.so is version %s: install both from one XPIO",
                          provider->version, XPIO_VERSION);
    xpio_tls = provider;
    push_submodule(L, "xpio.tls", lua_upvalueindex(1));
    return 1;
}

int luaopen_xpio(lua_State *L) {
    xpio_start();
    const xpio_module *m = &xpio_description;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &closing_key) == LUA_TNIL) {
        lua_newuserdatauv(L, 1, 0);
        lua_createtable(L, 0, 1);
        lua_pushcfunction(L, module_closing);
        lua_setfield(L, -2, "__gc");
        /* Counted here: from lua_setmetatable on, the sentinel's __gc (and
         * so xpio_stop) runs exactly once, whatever fails next. */
        xpio_state_opened();
        lua_setmetatable(L, -2);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &closing_key);
    }
    lua_pop(L, 1);
    lua_createtable(L, (int)xpio_current_task_index(), 0); /* its last place: the current task, nil */
    int kinds = lua_gettop(L);
    for (int32_t k = 0; k < m->nkinds; k++) {
        luaL_newmetatable(L, m->kinds[k].metatable);
        lua_rawseti(L, kinds, k + 1);
    }
    const char *names[] = XPIO_NAMES;
    for (int i = 0; i < XPIO_NNAMES; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, kinds, xpio_name_index(i));
    }
    for (int32_t k = 0; k < m->nkinds; k++) {
        const xpio_kind *kind = &m->kinds[k];
        lua_rawgeti(L, kinds, k + 1);
        lua_createtable(L, 0, kind->nmethods);
        fill(L, kind->methods, kind->nmethods, kinds, lua_gettop(L));
        lua_setfield(L, -2, "__index");
        set_metamethod(L, kind, kinds, "__gc", meta_gc);
        set_metamethod(L, kind, kinds, "__close", meta_close);
        set_metamethod(L, kind, kinds, "__tostring", meta_tostring);
        lua_pop(L, 1);
    }
    /* What luaopen_xpio_tls (xpio/tls.so) calls with its engine. */
    lua_pushvalue(L, kinds);
    lua_pushcclosure(L, install_tls, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "xpio.tls.install");
    lua_createtable(L, 0, m->nfunctions);
    fill(L, m->functions, m->nfunctions, kinds, lua_gettop(L));
    return 1;
}

extern char **environ;

/* xpio.env: the process environment as a table, read at load. */
int xpio_native_env(lua_State *L) {
    lua_newtable(L);
    for (char **entry = environ; entry && *entry; entry++) {
        const char *equals = strchr(*entry, '=');
        if (!equals || equals == *entry) continue;
        lua_pushlstring(L, *entry, (size_t)(equals - *entry));
        lua_pushstring(L, equals + 1);
        lua_rawset(L, -3);
    }
    return 1;
}

/* An entry implemented in Lua (`= lua MODULE` in the spec): the module
 * (lua/MODULE.lua, installed beside xpio.so) is required on first use and
 * called with the arguments as given, once C has checked them; it reads
 * tables raw. It may yield (xpio.run waits for its command): the call goes
 * through lua_callk. */
static int lua_finish(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    return lua_gettop(L);
}

int xpio_call_lua(lua_State *L, const char *module, int nparams) {
    lua_settop(L, nparams);
    if (lua_getglobal(L, "require") != LUA_TFUNCTION) return luaL_error(L, "%s: needs require", module);
    lua_pushstring(L, module);
    lua_call(L, 1, 1);
    lua_insert(L, 1);
    lua_callk(L, nparams, LUA_MULTRET, 0, lua_finish);
    return lua_finish(L, LUA_OK, 0);
}
