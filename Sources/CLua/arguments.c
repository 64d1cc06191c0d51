/*
 * Decoding arguments by type code (the codes are in xpio_glue.h): every
 * check that can fail with a Lua error happens here, before any Swift code
 * runs. Tables are read raw, so a user's metamethods never run.
 *
 * A value that does not match gives a message, composed from the inside
 * out so that it names where the bad value is:
 *   bad argument #1 to 'spawn' (args[2]: string expected, got table)
 *   bad argument #4 to 'spawn' (attrs.cwd must not contain NUL)
 *   bad argument #1 to 'read' (size must not be negative)
 */
#include "glue.h"
#include <string.h>

typedef struct decoder {
    lua_State *L;
    xpio_call *call;
    int scratch;          /* stack index of the table anchoring lists and converted strings */
    lua_Integer anchors;
    const char *unknown;  /* the first enum name to be answered with nil, message */
    int given;            /* how many arguments the caller passed */
    int call_params;      /* the argument slots: 1..call_params */
} decoder;

/* How a value failed to match; the message is on the top of the stack. */
enum { MATCHED = 0, MISMATCH, INVALID };

static const xpio_kind *kind_at(const char *code) { return &xpio_description->kinds[(unsigned char)*code - '@']; }
static const xpio_enum *enum_at(const char *code) { return &xpio_description->enums[(unsigned char)*code - '@']; }
static const xpio_record *record_at(const char *code) { return &xpio_description->records[(unsigned char)*code - '@']; }

/* The code after the type that starts at `code`. */
static const char *skip(const char *code) {
    switch (*code) {
    case 'o': case 'e': case 'v': case 'r': return code + 2;
    case '[': case '?': return skip(code + 1);
    case '{': return skip(skip(code + 1));
    case '|': {
        int n = code[1] - '0';
        code += 2;
        while (n-- > 0) code = skip(code);
        return code;
    }
    default: return code + 1;
    }
}

/* What the message says was expected, for a type mismatch. */
static const char *expected_name(const char *code) {
    switch (*code) {
    case 's': case 'c': case 'N': case 'e': return "string";
    case 'i': case 'u': case 'n': return "number";
    case 'b': return "boolean";
    case 'F': return "false";
    case 'o': return kind_at(code + 1)->metatable;
    case '?': return expected_name(code + 1);
    default: return "table";
    }
}

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

static int mismatch(decoder *d, int index, const char *expected) {
    lua_State *L = d->L;
    const char *actual = index > d->given && index <= d->call_params ? "no value" : actual_name(L, index);
    lua_pushfstring(L, "%s expected, got %s", expected, actual);
    return MISMATCH;
}

static int invalid(lua_State *L, const char *message) {
    lua_pushstring(L, message);
    return INVALID;
}

/* Keeps the value on the top alive for the call (pops it). */
static void anchor(decoder *d) {
    lua_State *L = d->L;
    if (!d->scratch) {
        lua_createtable(L, 4, 0);
        lua_insert(L, -2);
        d->scratch = lua_gettop(L) - 1;
    }
    lua_rawseti(L, d->scratch, ++d->anchors);
}

static xpio_value *new_values(decoder *d, lua_Integer count) {
    xpio_value *values = lua_newuserdatauv(d->L, (size_t)(count > 0 ? count : 1) * sizeof *values, 0);
    anchor(d);
    return values;
}

/* With a message and, above it, where the bad value was, leaves one
 * message naming the place: "[2]: string expected" (a type mismatch) or
 * "[2] must not ..." (a bad value); nested places join: "[1][2]: ...". */
static void prefix_location(lua_State *L, int status) {
    const char *where = lua_tostring(L, -1), *message = lua_tostring(L, -2);
    const char *glue = status == MISMATCH ? ": " : (*message == '[' || *message == '.') ? "" : " ";
    lua_pushfstring(L, "%s%s%s", where, glue, message);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

static int decode(decoder *d, int index, const char *code, xpio_value *out, int convert_in_place);

/* A string, converting a number (in place for an argument slot, on a copy
 * that is anchored otherwise). */
static int decode_string(decoder *d, int index, char type, xpio_value *out, int in_place) {
    lua_State *L = d->L;
    int t = lua_type(L, index);
    if (t != LUA_TSTRING && !(t == LUA_TNUMBER && type != 'N')) return mismatch(d, index, "string");
    size_t length;
    const char *text;
    if (t == LUA_TNUMBER && !in_place) {
        lua_pushvalue(L, index);
        text = lua_tolstring(L, -1, &length);
        anchor(d);
    } else {
        text = lua_tolstring(L, index, &length);
    }
    if (type != 's' && strlen(text) != length) return invalid(L, "must not contain NUL");
    if (type == 'N' && (length == 0 || strchr(text, '=')))
        return invalid(L, "must be a non-empty name without '=' or NUL");
    out->tag = XPIO_STRING;
    out->u.string = text;
    out->length = length;
    return MATCHED;
}

static int decode_integer(decoder *d, int index, char type, xpio_value *out) {
    lua_State *L = d->L;
    int isnum;
    lua_Integer value = lua_tointegerx(L, index, &isnum);
    if (!isnum) {
        if (lua_isnumber(L, index)) {
            lua_pushliteral(L, "number has no integer representation");
            return MISMATCH;
        }
        return mismatch(d, index, "number");
    }
    if (type == 'u' && value < 0) return invalid(L, "must not be negative");
    out->tag = XPIO_INTEGER;
    out->u.integer = value;
    return MATCHED;
}

static int decode_enum(decoder *d, int index, const char *code, xpio_value *out) {
    lua_State *L = d->L;
    const xpio_enum *e = enum_at(code + 1);
    if (lua_type(L, index) != LUA_TSTRING) return mismatch(d, index, "string");
    size_t length;
    const char *name = lua_tolstring(L, index, &length);
    size_t skipped = 0;
    if (e->prefix && strncmp(name, e->prefix, strlen(e->prefix)) == 0) skipped = strlen(e->prefix);
    out->tag = XPIO_CASE;
    out->length = (size_t)(code[1] - '@');
    for (int32_t i = 0; i < e->count; i++) {
        size_t n = strlen(e->cases[i]);
        if ((n == length && memcmp(name, e->cases[i], n) == 0) ||
            (skipped && n == length - skipped && memcmp(name + skipped, e->cases[i], n) == 0)) {
            out->count = i;
            return MATCHED;
        }
    }
    out->count = -1;
    if (e->unknown) {
        if (!d->unknown) d->unknown = e->unknown;
        return MATCHED;
    }
    if (length <= 32 && strlen(name) == length) lua_pushfstring(L, "must be a %s name (got \"%s\")", e->name, name);
    else lua_pushfstring(L, "must be a %s name", e->name);
    return INVALID;
}

static int decode_array(decoder *d, int index, const char *code, xpio_value *out) {
    lua_State *L = d->L;
    if (lua_type(L, index) != LUA_TTABLE) return mismatch(d, index, "table");
    lua_Integer count = (lua_Integer)lua_rawlen(L, index);
    xpio_value *values = new_values(d, count);
    for (lua_Integer i = 0; i < count; i++) {
        lua_rawgeti(L, index, i + 1);
        int status = decode(d, lua_gettop(L), code + 1, &values[i], 0);
        if (status != MATCHED) {
            lua_pushfstring(L, "[%I]", (lua_Integer)(i + 1));
            prefix_location(L, status);
            return INVALID;
        }
        lua_pop(L, 1);
    }
    out->tag = XPIO_LIST;
    out->count = (int32_t)count;
    out->u.list = values;
    return MATCHED;
}

/* Pushes where a map entry is, for messages: ["NAME"] or [3]. */
static void push_entry_location(lua_State *L, int key, const char *what) {
    if (lua_type(L, key) == LUA_TSTRING) lua_pushfstring(L, "[\"%s\"]%s", lua_tostring(L, key), what);
    else if (lua_isinteger(L, key)) lua_pushfstring(L, "[%I]%s", lua_tointeger(L, key), what);
    else if (lua_type(L, key) == LUA_TNUMBER) lua_pushfstring(L, "[%f]%s", lua_tonumber(L, key), what);
    else lua_pushfstring(L, "[%s]%s", luaL_typename(L, key), what);
}

static int decode_map(decoder *d, int index, const char *code, xpio_value *out) {
    lua_State *L = d->L;
    if (lua_type(L, index) != LUA_TTABLE) return mismatch(d, index, "table");
    const char *key_code = code + 1, *value_code = skip(key_code);
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        lua_pop(L, 1);
        count++;
    }
    xpio_value *values = new_values(d, 2 * count);
    lua_Integer i = 0;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        int key = lua_gettop(L) - 1, value = key + 1;
        int status = decode(d, key, key_code, &values[2 * i], 0);
        if (status != MATCHED) {
            push_entry_location(L, key, " (the key)");
            prefix_location(L, status);
            return INVALID;
        }
        status = decode(d, value, value_code, &values[2 * i + 1], 0);
        if (status != MATCHED) {
            push_entry_location(L, key, "");
            prefix_location(L, status);
            return INVALID;
        }
        lua_settop(L, key);
        i++;
    }
    out->tag = XPIO_LIST;
    out->count = (int32_t)(2 * count);
    out->u.list = values;
    return MATCHED;
}

static int decode_record(decoder *d, int index, const char *code, xpio_value *out) {
    lua_State *L = d->L;
    const xpio_record *record = record_at(code + 1);
    if (lua_type(L, index) != LUA_TTABLE) return mismatch(d, index, "table");
    xpio_value *values = new_values(d, record->count);
    for (int32_t i = 0; i < record->count; i++) {
        lua_pushstring(L, record->fields[i]);
        lua_rawget(L, index);
        int status = decode(d, lua_gettop(L), record->types[i], &values[i], 0);
        if (status != MATCHED) {
            lua_pushfstring(L, ".%s", record->fields[i]);
            prefix_location(L, status);
            return INVALID;
        }
        lua_pop(L, 1);
    }
    out->tag = XPIO_LIST;
    out->count = record->count;
    out->u.list = values;
    return MATCHED;
}

static int decode_union(decoder *d, int index, const char *code, xpio_value *out, int in_place) {
    lua_State *L = d->L;
    int n = code[1] - '0';
    const char *alternative = code + 2;
    for (int i = 0; i < n; i++, alternative = skip(alternative)) {
        int status = decode(d, index, alternative, out, in_place);
        if (status != MISMATCH) return status; /* matched, or the right type with a bad value */
        lua_pop(L, 1);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    alternative = code + 2;
    for (int i = 0; i < n; i++, alternative = skip(alternative)) {
        if (i > 0) luaL_addstring(&b, i == n - 1 ? " or " : ", ");
        luaL_addstring(&b, expected_name(alternative));
    }
    luaL_pushresult(&b);
    mismatch(d, index, lua_tostring(L, -1));
    lua_remove(L, -2);
    return MISMATCH;
}

/* Decodes the value at `index` as the type at `code` into `out`. */
static int decode(decoder *d, int index, const char *code, xpio_value *out, int in_place) {
    lua_State *L = d->L;
    int type = lua_type(L, index);
    out->tag = XPIO_ABSENT;
    switch (*code) {
    case '?':
        /* false leaves an option out, except where a boolean is taken: there
         * it says no (`verify = false` where the default is true). */
        if (type <= LUA_TNIL || (type == LUA_TBOOLEAN && !lua_toboolean(L, index) && code[1] != 'b')) return MATCHED;
        return decode(d, index, code + 1, out, in_place);
    case 's': case 'c': case 'N':
        return decode_string(d, index, *code, out, in_place);
    case 'i': case 'u':
        return decode_integer(d, index, *code, out);
    case 'n':
        if (!lua_isnumber(L, index)) return mismatch(d, index, "number");
        out->tag = XPIO_NUMBER;
        out->u.number = lua_tonumber(L, index);
        return MATCHED;
    case 'b':
        if (type != LUA_TBOOLEAN) return mismatch(d, index, "boolean");
        out->tag = XPIO_BOOLEAN;
        out->u.integer = lua_toboolean(L, index);
        return MATCHED;
    case 'F':
        if (type != LUA_TBOOLEAN || lua_toboolean(L, index)) return mismatch(d, index, "false");
        out->tag = XPIO_BOOLEAN;
        out->u.integer = 0;
        return MATCHED;
    case 't': case 'k':
        if (type != LUA_TTABLE) return mismatch(d, index, "table");
        /* fall through */
    case 'a':
        out->tag = XPIO_SLOT;
        out->u.index = index;
        return MATCHED;
    case 'o': {
        void **slot = xpio_toobject(L, index, code[1] - '@');
        if (!slot) return mismatch(d, index, kind_at(code + 1)->metatable);
        out->tag = XPIO_OBJECT;
        out->count = code[1] - '@';
        out->u.object = *slot;
        return MATCHED;
    }
    case 'e':
        return decode_enum(d, index, code, out);
    case 'v': {
        const xpio_value *chosen = &d->call->arg[code[1] - '@'];
        if (chosen->tag != XPIO_CASE || chosen->count < 0) return decode(d, index, "a", out, in_place);
        const char *value = xpio_description->enums[chosen->length].values[chosen->count];
        return decode(d, index, value ? value : "a", out, in_place);
    }
    case 'r':
        return decode_record(d, index, code, out);
    case '[':
        return decode_array(d, index, code, out);
    case '{':
        return decode_map(d, index, code, out);
    case '|':
        return decode_union(d, index, code, out, in_place);
    default:
        return luaL_error(L, "xpio: bad type code '%c' (a generator bug)", *code);
    }
}

/* The common cases, without the general decoder's bookkeeping: an object
 * (self), an integer, a size, an optional parameter left out, a string
 * given to a union that takes strings first. 1 when done, 0 to take the general path
 * (which also composes the message of a bad value). */
static int decode_fast(lua_State *L, int index, const char *code, xpio_value *out) {
    switch (code[0]) {
    case 'o': {
        if (code[2]) return 0;
        void **slot = xpio_toobject(L, index, code[1] - '@');
        if (!slot) return 0;
        out->tag = XPIO_OBJECT;
        out->count = code[1] - '@';
        out->u.object = *slot;
        return 1;
    }
    case '?': /* an optional parameter left out: none or nil */
        if (lua_type(L, index) > LUA_TNIL) return 0;
        out->tag = XPIO_ABSENT;
        return 1;
    case '|': /* a string where a string comes first (write's string|string[]) */
        if (code[2] != 's' || lua_type(L, index) != LUA_TSTRING) return 0;
        out->tag = XPIO_STRING;
        out->u.string = lua_tolstring(L, index, &out->length);
        return 1;
    case 'i': case 'u': {
        if (code[1]) return 0;
        int isnum;
        lua_Integer value = lua_tointegerx(L, index, &isnum);
        if (!isnum || (code[0] == 'u' && value < 0)) return 0;
        out->tag = XPIO_INTEGER;
        out->u.integer = value;
        return 1;
    }
    default:
        return 0;
    }
}

int xpio_decode(lua_State *L, const xpio_entry *entry, xpio_call *call) {
    int given = lua_gettop(L);
    decoder d = { L, call, 0, 0, NULL, given, entry->nparams };
    call->progress = 0;
    call->remaining = 0;
    if (given != entry->nparams) lua_settop(L, entry->nparams);
    for (int32_t p = 0; p < entry->nparams; p++) {
        if (decode_fast(L, p + 1, entry->types[p], &call->arg[p])) continue;
        int status = decode(&d, p + 1, entry->types[p], &call->arg[p], 1);
        if (status == INVALID) {
            lua_pushstring(L, entry->params[p]);
            prefix_location(L, status);
        }
        if (status != MATCHED) return xpio_argerror(L, p + 1, lua_tostring(L, -1));
    }
    if (d.unknown) {
        call->message = d.unknown;
        return XPIO_MESSAGE;
    }
    return 0;
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
    if (lua_type(L, index) != LUA_TUSERDATA || !lua_getmetatable(L, index)) return NULL;
    lua_rawgeti(L, XPIO_KINDS_UPVALUE, kind + 1);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? (void **)lua_touserdata(L, index) : NULL;
}
