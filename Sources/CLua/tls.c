/*
 * The TLS entries whose results are tables of tables (Spec/tls.spec,
 * `= native`): they ask the engine xpio/tls.so installed (Sources/CTLSABI)
 * and build the tables here, where the Lua API is. No Swift frame is live
 * while they push: the engine is C-callable and answers plain values.
 */
#include "glue.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const xpio_tls_provider *xpio_tls;

/* The TLS connection of the socket at 1, after the entry's argument
 * checks; NULL with `nil, message` pushed (2 results) when there is none. */
static void *connection_of(lua_State *L, int *results) {
    void *socket = xpio_object_at(L, 1);
    int closed = 0;
    void *connection = socket ? xpio_socket_tls_connection(socket, &closed) : NULL;
    if (!connection) {
        lua_pushnil(L);
        if (closed || !socket) lua_pushliteral(L, "xpio: socket is closed");
        else lua_pushliteral(L, "xpio: tls: not a TLS socket");
        *results = 2;
    }
    return connection;
}

static void set_string(lua_State *L, const char *name, const char *value) {
    if (!value) return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, name);
}

/* socket:tlsinfo() */
int xpio_native_socket_tlsinfo(lua_State *L) {
    int results = 0;
    void *connection = connection_of(L, &results);
    if (!connection) return results;
    xpio_tls_info info = { 0 };
    xpio_tls->info(connection, &info);
    lua_createtable(L, 0, 6);
    set_string(L, "version", info.version);
    set_string(L, "cipher", info.cipher);
    set_string(L, "alpn", info.alpn);
    set_string(L, "servername", info.servername);
    lua_pushboolean(L, info.resumed);
    lua_setfield(L, -2, "resumed");
    lua_pushboolean(L, info.verified);
    lua_setfield(L, -2, "verified");
    return 1;
}

/* The certificates the engine reported, copied out of its frames: the
 * engine calls `copy_certificate` from inside its own (Swift) code, where
 * no Lua call may happen (a memory error would jump through them). The
 * tables are made from the copies afterwards, under lua_pcall, and the
 * copies are freed whatever happens. */
typedef struct certificates {
    xpio_tls_certificate *list;
    int count, capacity, failed;
} certificates;

static char *copy_bytes(const char *text, size_t length, int *failed) {
    if (!text) return NULL;
    char *copy = malloc(length + 1);
    if (!copy) {
        *failed = 1;
        return NULL;
    }
    memcpy(copy, text, length);
    copy[length] = 0;
    return copy;
}

static char *copy_string(const char *text, int *failed) { return text ? copy_bytes(text, strlen(text), failed) : NULL; }

static void copy_certificate(void *user, const xpio_tls_certificate *c) {
    certificates *all = user;
    if (all->count == all->capacity) {
        int capacity = all->capacity ? all->capacity * 2 : 4;
        xpio_tls_certificate *bigger = realloc(all->list, (size_t)capacity * sizeof *bigger);
        if (!bigger) {
            all->failed = 1;
            return;
        }
        all->list = bigger;
        all->capacity = capacity;
    }
    xpio_tls_certificate *copy = &all->list[all->count++];
    memset(copy, 0, sizeof *copy);
    copy->subject = copy_string(c->subject, &all->failed);
    copy->issuer = copy_string(c->issuer, &all->failed);
    copy->serial = copy_string(c->serial, &all->failed);
    copy->sha256 = copy_string(c->sha256, &all->failed);
    copy->pem = copy_bytes(c->pem, c->pem_length, &all->failed);
    copy->pem_length = copy->pem ? c->pem_length : 0;
    copy->not_before = c->not_before;
    copy->not_after = c->not_after;
    char **san = c->nsan > 0 ? calloc((size_t)c->nsan, sizeof *san) : NULL;
    if (c->nsan > 0 && !san) all->failed = 1;
    for (int i = 0; san && i < c->nsan; i++) san[i] = copy_string(c->san[i], &all->failed);
    copy->san = (const char *const *)san;
    copy->nsan = san ? c->nsan : 0;
}

static void free_certificates(certificates *all) {
    for (int i = 0; i < all->count; i++) {
        xpio_tls_certificate *c = &all->list[i];
        free((void *)c->subject);
        free((void *)c->issuer);
        free((void *)c->serial);
        free((void *)c->sha256);
        free((void *)c->pem);
        for (int j = 0; j < c->nsan; j++) free((void *)c->san[j]);
        free((void *)c->san);
    }
    free(all->list);
}

static void push_certificate(lua_State *L, const xpio_tls_certificate *c) {
    lua_createtable(L, 0, 9);
    set_string(L, "subject", c->subject);
    set_string(L, "issuer", c->issuer);
    set_string(L, "serial", c->serial);
    lua_pushinteger(L, (lua_Integer)c->not_before);
    lua_setfield(L, -2, "not_before");
    lua_pushinteger(L, (lua_Integer)c->not_after);
    lua_setfield(L, -2, "not_after");
    lua_createtable(L, c->nsan, 0);
    for (int i = 0; i < c->nsan; i++) {
        lua_pushstring(L, c->san[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "san");
    set_string(L, "sha256", c->sha256);
    if (c->pem) {
        lua_pushlstring(L, c->pem, c->pem_length);
        lua_setfield(L, -2, "pem");
    }
}

/* Under lua_pcall: the copies (light userdata) and `chain`. */
static int push_certificates(lua_State *L) {
    certificates *all = lua_touserdata(L, 1);
    if (!lua_toboolean(L, 2)) {
        push_certificate(L, &all->list[0]);
        return 1;
    }
    lua_createtable(L, all->count, 0);
    for (int i = 0; i < all->count; i++) {
        push_certificate(L, &all->list[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* socket:peer_certificate([chain]) */
int xpio_native_socket_peer_certificate(lua_State *L) {
    int results = 0;
    void *connection = connection_of(L, &results);
    if (!connection) return results;
    int chain = lua_toboolean(L, 2);
    certificates all = { 0 };
    xpio_tls->peer_certificates(connection, chain, copy_certificate, &all);
    if (all.failed) {
        free_certificates(&all);
        lua_pushnil(L);
        lua_pushstring(L, strerror(ENOMEM));
        return 2;
    }
    if (all.count == 0) {
        free_certificates(&all);
        lua_pushnil(L);
        return 1;
    }
    lua_pushcfunction(L, push_certificates);
    lua_pushlightuserdata(L, &all);
    lua_pushboolean(L, chain);
    int status = lua_pcall(L, 2, 1, 0);
    free_certificates(&all);
    if (status != LUA_OK) return lua_error(L);
    return 1;
}
