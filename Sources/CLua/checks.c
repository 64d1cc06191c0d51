/*
 * The named checks each entry's generated C function (Glue.c) calls on its
 * arguments, one per kind of type: every check that can fail with a Lua
 * error happens here, before any Swift code runs. Tables are read raw, so
 * a user's metamethods never run.
 *
 * A value that does not match gives a message, composed from the inside
 * out so that it names where the bad value is (see glue.h).
 */
#include "glue.h"
#include <string.h>

/* The value's type as messages name it: its __name, or its Lua type. */
static const char *actual_name(lua_State *L, int index) {
    if (luaL_getmetafield(L, index, "__name") == LUA_TSTRING) {
        const char *name = lua_tostring(L, -1);
        lua_pop(L, 1); /* the metatable still holds the string */
        return name;
    }
    if (lua_type(L, index) == LUA_TLIGHTUSERDATA) return "light userdata";
    return luaL_typename(L, index);
}

static int mismatch(xpio_checker *c, int index, const char *expected) {
    lua_State *L = c->L;
    const char *actual = index > c->given && index <= c->nparams ? "no value" : actual_name(L, index);
    lua_pushfstring(L, "%s expected, got %s", expected, actual);
    return XPIO_MISMATCH;
}

static int invalid(lua_State *L, const char *message) {
    lua_pushstring(L, message);
    return XPIO_INVALID;
}

/* Keeps the value on the top alive for the call (pops it). */
static void anchor(xpio_checker *c) {
    lua_State *L = c->L;
    if (!c->scratch) {
        lua_createtable(L, 4, 0);
        lua_insert(L, -2);
        c->scratch = lua_gettop(L) - 1;
    }
    lua_rawseti(L, c->scratch, ++c->anchors);
}

static xpio_item *new_items(xpio_checker *c, lua_Integer count) {
    xpio_item *items = lua_newuserdatauv(c->L, (size_t)(count > 0 ? count : 1) * sizeof *items, 0);
    anchor(c);
    return items;
}

/* Nothing in `out` but what its check then fills (unions and records
 * read `which`, `object` and `string` of any item). */
static void clear(xpio_item *out) {
    xpio_item_absent(out);
    out->which = 0;
}

/* With a message and, above it, where the bad value was, leaves one
 * message naming the place: "[2]: string expected" (a type mismatch) or
 * "[2] must not ..." (a bad value); nested places join: "[1][2]: ...". */
static void prefix_location(lua_State *L, int status) {
    const char *where = lua_tostring(L, -1), *message = lua_tostring(L, -2);
    const char *glue = status == XPIO_MISMATCH ? ": " : (*message == '[' || *message == '.') ? "" : " ";
    lua_pushfstring(L, "%s%s%s", where, glue, message);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* A string, converting a number: in place for an argument's own slot, on
 * an anchored copy for a value inside a table. */
int xpio_check_string(xpio_checker *c, int index, int mode, xpio_item *out) {
    lua_State *L = c->L;
    int t = lua_type(L, index);
    if (t != LUA_TSTRING && !(t == LUA_TNUMBER && mode != XPIO_NAME)) return mismatch(c, index, "string");
    size_t length;
    const char *text;
    if (t == LUA_TNUMBER && index > c->nparams) {
        lua_pushvalue(L, index);
        text = lua_tolstring(L, -1, &length);
        anchor(c);
    } else {
        text = lua_tolstring(L, index, &length);
    }
    if (mode != XPIO_ANY_STRING && strlen(text) != length) return invalid(L, "must not contain NUL");
    if (mode == XPIO_NAME && (length == 0 || strchr(text, '=')))
        return invalid(L, "must be a non-empty name without '=' or NUL");
    clear(out);
    out->string.bytes = text;
    out->string.length = length;
    return XPIO_MATCHED;
}

int xpio_check_integer(xpio_checker *c, int index, int nonnegative, xpio_item *out) {
    lua_State *L = c->L;
    int isnum;
    lua_Integer value = lua_tointegerx(L, index, &isnum);
    if (!isnum) {
        if (lua_isnumber(L, index)) {
            lua_pushliteral(L, "number has no integer representation");
            return XPIO_MISMATCH;
        }
        return mismatch(c, index, "number");
    }
    if (nonnegative && value < 0) return invalid(L, "must not be negative");
    clear(out);
    out->integer = value;
    return XPIO_MATCHED;
}

int xpio_check_number(xpio_checker *c, int index, xpio_item *out) {
    int isnum;
    lua_Number value = lua_tonumberx(c->L, index, &isnum);
    if (!isnum) return mismatch(c, index, "number");
    clear(out);
    out->number = value;
    return XPIO_MATCHED;
}

int xpio_check_boolean(xpio_checker *c, int index, xpio_item *out) {
    if (lua_type(c->L, index) != LUA_TBOOLEAN) return mismatch(c, index, "boolean");
    clear(out);
    out->integer = lua_toboolean(c->L, index);
    return XPIO_MATCHED;
}

int xpio_check_false(xpio_checker *c, int index, xpio_item *out) {
    if (lua_type(c->L, index) != LUA_TBOOLEAN || lua_toboolean(c->L, index)) return mismatch(c, index, "false");
    clear(out);
    out->integer = 0;
    return XPIO_MATCHED;
}

int xpio_check_table(xpio_checker *c, int index, xpio_item *out) {
    if (lua_type(c->L, index) != LUA_TTABLE) return mismatch(c, index, "table");
    clear(out);
    return XPIO_MATCHED;
}

int xpio_check_object(xpio_checker *c, int index, int kind, xpio_item *out) {
    void **slot = xpio_toobject(c->L, index, kind);
    if (!slot) return mismatch(c, index, xpio_description.kinds[kind].metatable);
    clear(out);
    out->object = *slot;
    return XPIO_MATCHED;
}

int xpio_check_any(xpio_checker *c, int index, xpio_item *out) {
    (void)c;
    (void)index;
    clear(out);
    return XPIO_MATCHED;
}

int xpio_check_enum(xpio_checker *c, int index, const xpio_enum *e, xpio_item *out) {
    lua_State *L = c->L;
    if (lua_type(L, index) != LUA_TSTRING) return mismatch(c, index, "string");
    size_t length;
    const char *name = lua_tolstring(L, index, &length);
    size_t skipped = 0;
    if (e->prefix && strncmp(name, e->prefix, strlen(e->prefix)) == 0) skipped = strlen(e->prefix);
    clear(out);
    for (int32_t i = 0; i < e->count; i++) {
        size_t n = strlen(e->cases[i]);
        if ((n == length && memcmp(name, e->cases[i], n) == 0) ||
            (skipped && n == length - skipped && memcmp(name + skipped, e->cases[i], n) == 0)) {
            out->integer = i;
            return XPIO_MATCHED;
        }
    }
    out->integer = -1;
    if (e->unknown) {
        if (!c->unknown) c->unknown = e->unknown;
        return XPIO_MATCHED;
    }
    if (length <= 32 && strlen(name) == length) lua_pushfstring(L, "must be a %s name (got \"%s\")", e->name, name);
    else lua_pushfstring(L, "must be a %s name", e->name);
    return XPIO_INVALID;
}

int xpio_check_optional(xpio_checker *c, int index, xpio_check check, int takes_false, xpio_item *out) {
    if (xpio_argument_absent(c->L, index, takes_false)) {
        clear(out);
        out->which = -1;
        return XPIO_MATCHED;
    }
    return check(c, index, out);
}

int xpio_check_array(xpio_checker *c, int index, xpio_check element, xpio_item *out) {
    lua_State *L = c->L;
    if (lua_type(L, index) != LUA_TTABLE) return mismatch(c, index, "table");
    lua_Integer count = (lua_Integer)lua_rawlen(L, index);
    xpio_item *items = new_items(c, count);
    for (lua_Integer i = 0; i < count; i++) {
        lua_rawgeti(L, index, i + 1);
        int status = element(c, lua_gettop(L), &items[i]);
        if (status != XPIO_MATCHED) {
            lua_pushfstring(L, "[%I]", (lua_Integer)(i + 1));
            prefix_location(L, status);
            return XPIO_INVALID;
        }
        lua_pop(L, 1);
    }
    clear(out);
    out->count = (int32_t)count;
    out->items = items;
    return XPIO_MATCHED;
}

/* Pushes where a map entry is, for messages: ["NAME"] or [3]. */
static void push_entry_location(lua_State *L, int key, const char *what) {
    if (lua_type(L, key) == LUA_TSTRING) lua_pushfstring(L, "[\"%s\"]%s", lua_tostring(L, key), what);
    else if (lua_isinteger(L, key)) lua_pushfstring(L, "[%I]%s", lua_tointeger(L, key), what);
    else if (lua_type(L, key) == LUA_TNUMBER) lua_pushfstring(L, "[%f]%s", lua_tonumber(L, key), what);
    else lua_pushfstring(L, "[%s]%s", luaL_typename(L, key), what);
}

int xpio_check_map(xpio_checker *c, int index, xpio_check key_check, xpio_check value_check, xpio_item *out) {
    lua_State *L = c->L;
    if (lua_type(L, index) != LUA_TTABLE) return mismatch(c, index, "table");
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        count++;
    }
    xpio_item *items = new_items(c, 2 * count);
    lua_Integer i = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        int key = lua_gettop(L) - 1, value = key + 1;
        int status = key_check(c, key, &items[2 * i]);
        if (status != XPIO_MATCHED) {
            push_entry_location(L, key, " (the key)");
            prefix_location(L, status);
            return XPIO_INVALID;
        }
        status = value_check(c, value, &items[2 * i + 1]);
        if (status != XPIO_MATCHED) {
            push_entry_location(L, key, "");
            prefix_location(L, status);
            return XPIO_INVALID;
        }
        lua_settop(L, key);
        i++;
    }
    clear(out);
    out->count = (int32_t)(2 * count);
    out->items = items;
    return XPIO_MATCHED;
}

int xpio_check_record(xpio_checker *c, int index, int32_t count, const char *const *fields, const xpio_check *checks,
                      xpio_item *out) {
    lua_State *L = c->L;
    if (lua_type(L, index) != LUA_TTABLE) return mismatch(c, index, "table");
    xpio_item *items = new_items(c, count);
    for (int32_t i = 0; i < count; i++) {
        lua_pushstring(L, fields[i]);
        lua_rawget(L, index);
        int status = checks[i](c, lua_gettop(L), &items[i]);
        if (status != XPIO_MATCHED) {
            lua_pushfstring(L, ".%s", fields[i]);
            prefix_location(L, status);
            return XPIO_INVALID;
        }
        lua_pop(L, 1);
    }
    clear(out);
    out->count = count;
    out->items = items;
    return XPIO_MATCHED;
}

/* When no member takes the value, one that took its type and refused the
 * value says why ("number has no integer representation", for 1.5 as
 * integer|signame); else the message lists the types. */
int xpio_check_union(xpio_checker *c, int index, int32_t count, const xpio_check *members, const char *expected,
                     xpio_item *out) {
    lua_State *L = c->L;
    int32_t why = -1; /* such a member: asked again at the end, for its message */
    for (int32_t i = 0; i < count; i++) {
        int status = members[i](c, index, out);
        if (status == XPIO_MATCHED) out->which = i;
        if (status != XPIO_MISMATCH) return status; /* matched, or the right type with a bad value */
        if (why < 0 && !strstr(lua_tostring(L, -1), " expected, got ")) why = i;
        lua_pop(L, 1);
    }
    if (why >= 0) return members[why](c, index, out);
    return mismatch(c, index, expected);
}

int xpio_argument_failed(xpio_checker *c, int arg, const char *name, int status) {
    lua_State *L = c->L;
    if (status == XPIO_INVALID) {
        lua_pushstring(L, name);
        prefix_location(L, status);
    }
    return xpio_argerror(L, arg, lua_tostring(L, -1));
}

void xpio_check_argument(xpio_checker *c, int arg, const char *name, xpio_check check, xpio_item *out) {
    /* This check may push values above the arguments (a compound value's
     * elements, an enum's unknown name): the arguments left out become nil
     * slots first, so that nothing pushed lands where a later argument is
     * looked for. Done here, on the way of compound values only, the usual
     * call (`s:write(data)`, `s:readline()`) sets no stack top. */
    if (c->given < c->nparams && lua_gettop(c->L) < c->nparams) lua_settop(c->L, c->nparams);
    int status = check(c, arg, out);
    if (status != XPIO_MATCHED) xpio_argument_failed(c, arg, name, status);
}

/* Like luaL_argerror, but names the function by its XPIO name even when the
 * call site gives none (pcall(f, ...)), and counts arguments as the caller
 * wrote them: in a method call (s:bind(x)) self is not counted. */
int xpio_argerror(lua_State *L, int arg, const char *message) {
    const char *name = xpio_current_entry(L)->name;
    lua_Debug ar;
    if (lua_getstack(L, 0, &ar)) {
        lua_getinfo(L, "n", &ar);
        if (ar.namewhat && strcmp(ar.namewhat, "method") == 0) {
            arg--;
            if (arg == 0) return luaL_error(L, "calling '%s' on bad self (%s)", name, message);
        }
    }
    return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, message);
}

void **xpio_toobject(lua_State *L, int index, int kind) {
    xpio_userdata *u = (xpio_userdata *)lua_touserdata(L, index);
    if (!u || lua_rawlen(L, index) != sizeof *u || u->kind != &xpio_description.kinds[kind]) return NULL;
    return &u->object;
}
