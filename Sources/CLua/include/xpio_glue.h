/*
 * The boundary between XPIO's C glue (this target) and its Swift code: all
 * that Swift sees of Lua. It has no lua.h in it, so Swift cannot call the
 * Lua API at all, and that is the point.
 *
 * THE RULE: no longjmp may cross a Swift frame. lua_error, luaL_check*,
 * luaL_error and lua_yield* jump out of the function that calls them, and
 * so can every Lua API call that allocates (a memory error) or runs a
 * metamethod (any error). A jump through a Swift frame skips its cleanups
 * and is undefined behaviour. So the Lua state is touched by C alone:
 *
 *   1. C decodes every argument (types, enums, records, arrays, maps: the
 *      type codes below) into an `xpio_call`, raising argument errors, and
 *      makes the objects a function returns before anything happens.
 *   2. C calls the Swift body with the `xpio_call`. Swift does the work
 *      with plain C values, writes results into the call, and returns a
 *      status. It can make no Lua error: it has no Lua to call.
 *   3. After Swift has returned, C pushes the results, or the failure pair,
 *      or raises, or yields.
 *
 * Tables of the user's are read raw (lua_rawget, lua_rawlen, lua_next), so
 * no metamethod of theirs runs inside an XPIO call either.
 */
#ifndef XPIO_GLUE_H
#define XPIO_GLUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lua_State lua_State;

/* ---------------------------------------------------------------- values */

/* What an `xpio_value` holds. */
enum {
    XPIO_ABSENT = 0, /* an optional argument left out (none, nil or false) */
    XPIO_NIL,        /* a result: nil */
    XPIO_BOOLEAN,    /* u.integer: 0 or 1 */
    XPIO_INTEGER,    /* u.integer */
    XPIO_NUMBER,     /* u.number */
    XPIO_STRING,     /* u.string, length bytes (NUL-terminated when from Lua) */
    XPIO_OBJECT,     /* u.object: the Swift object (unretained); count: its kind */
    XPIO_CASE,       /* count: the case's index in its enum; -1 unknown; length: the enum */
    XPIO_LIST,       /* u.list, count values (a map: key, value, key, value, ...) */
    XPIO_SLOT,       /* u.index: a Lua value on the stack (tables, tasks): for C only */
    XPIO_OBJECTS     /* a result: u.list points to count retained objects (void *) of kind length */
};

typedef struct xpio_value {
    int32_t tag;
    int32_t count;
    size_t length;
    union {
        int64_t integer;
        double number;
        const char *string;
        void *object;
        struct xpio_value *list;
        int32_t index;
    } u;
} xpio_value;

/* ----------------------------------------------------------------- calls */

#define XPIO_MAX_ARGS 8
#define XPIO_MAX_RESULTS 4

/* One call of a Lua function: its decoded arguments (`self` first for a
 * method), and what the Swift body answers. */
typedef struct xpio_call {
    xpio_value arg[XPIO_MAX_ARGS];
    xpio_value result[XPIO_MAX_RESULTS];
    /* The payload slots of the objects made before the body runs, in the
     * order of the entry's `objects`: the body stores a retained object in
     * each one it returns. */
    void **object[XPIO_MAX_RESULTS];
    int32_t object_slot[XPIO_MAX_RESULTS];
    /* A failure's details (see the statuses below). Messages are static. */
    const char *message;
    int32_t code;
    /* A `whole` entry (see xpio_entry.whole): C sets `progress` to the
     * bytes earlier tries of this blocking call moved (0 for a try_ call
     * and a first try); the body moves what follows them and sets
     * `remaining` to what is still to move after this try (0: done). */
    int64_t progress;
    int64_t remaining;
} xpio_call;

/* What a body returns: n >= 0 results are in `result`, or a failure. */
enum {
    XPIO_RETRY = -1,    /* would block: nil, "retry" (a blocking function waits) */
    XPIO_ERRNO = -2,    /* nil, strerror(code) */
    XPIO_MESSAGE = -3,  /* nil, message */
    XPIO_CLOSED = -4,   /* nil, "xpio: <message> is closed" */
    XPIO_ARGERROR = -5, /* raise: bad argument #code (message) */
    XPIO_RAISE = -6     /* raise: message */
};

typedef int32_t (*xpio_body)(xpio_call *call);

/* Element access for Swift, which sees C arrays as tuples. */
static inline xpio_value *xpio_argument(xpio_call *call, int32_t i) { return &call->arg[i]; }
static inline xpio_value *xpio_result(xpio_call *call, int32_t i) { return &call->result[i]; }
/* Stores a retained object in made object `i`, as result `position`. */
static inline void xpio_store_object(xpio_call *call, int32_t position, int32_t i, void *object) {
    *call->object[i] = object;
    call->result[position].tag = XPIO_OBJECT;
    call->result[position].count = i;
}

/* ---------------------------------------------------------- descriptions */

/*
 * Type codes: one string per parameter, self-delimiting, read by the
 * argument decoder (arguments.c). What each decodes to is in brackets.
 *
 *   s  a string; a number is converted, as the standard library does [STRING]
 *   c  a string without NUL bytes [STRING]
 *   N  a name: a non-empty string without '=' or NUL (environment names) [STRING]
 *   i  an integer [INTEGER]          u  a non-negative integer [INTEGER]
 *   n  a number [NUMBER]             b  a boolean [BOOLEAN]
 *   F  the value false [BOOLEAN]
 *   t  a table [SLOT]                k  a task (a table) [SLOT]
 *   a  any value [SLOT]
 *   o<K>  an object of kind K [OBJECT; NULL once collected]
 *   e<E>  a name from enum E [CASE]
 *   v<P>  the value of the enum case chosen by parameter P: its type is the
 *         case's value type (setsockopt's value) [as that type]
 *   r<R>  a record R: a table with typed fields [LIST, one value per field]
 *   [<T>  an array of T, 1..#t read raw [LIST]
 *   {<K><V>  a map from K to V, read with next [LIST of pairs]
 *   |<n><T1>..<Tn>  the first of n types that matches
 *   ?<T>  T, or none, nil or false [ABSENT]
 *
 * K, E, P and R are one byte: '@' + the index (kinds, enums and records
 * in spec order; parameters counted from self or the first argument).
 */

/* PLAIN: the body does it all. BLOCKING: the body is the try_ form; C
 * waits with the when_ partner and yields. WHEN: the body answers what to
 * wait on (result 0: a runtime Descriptor, or nil for "ready at once") and
 * for what (result 1: READABLE or WRITABLE); C schedules the task. NATIVE: a C function. FIELD: a
 * native that pushes a value for the module table at load time. LUA: C
 * checks the arguments, then calls the Lua module `lua` (required on first
 * use) with them, as given. */
enum { XPIO_PLAIN = 0, XPIO_BLOCKING, XPIO_WHEN, XPIO_NATIVE, XPIO_FIELD, XPIO_LUA };
enum { XPIO_READABLE = 0, XPIO_WRITABLE = 1 };

typedef int (*xpio_native)(lua_State *L);

typedef struct xpio_entry {
    const char *name;           /* the Lua name: "read", "socket" */
    const char *const *types;   /* one type code per parameter, self first */
    const char *const *params;  /* the parameters' names, for messages */
    int32_t nparams;
    int32_t role;               /* PLAIN, BLOCKING, WHEN, NATIVE, FIELD */
    int32_t method;             /* a method: self is parameter 0 */
    xpio_body body;
    xpio_native native;         /* NATIVE: the C function */
    const char *partner;        /* BLOCKING: the when_ function */
    int32_t whole;              /* BLOCKING: the parameter written whole, or -1:
                                   the body is tried again with call->progress
                                   advanced until call->remaining is 0, and
                                   result 0 counts every byte */
    int32_t readiness;          /* WHEN: READABLE or WRITABLE */
    const char *objects;        /* the kinds of the objects returned, '@' + index */
    const char *lua;            /* LUA: the Lua module that implements it */
} xpio_entry;

/* A table of functions beside the module's own (`xpio.tls`), made when
 * that module is installed (module.c). */
typedef struct xpio_submodule {
    const char *name;           /* "xpio.tls" */
    const xpio_entry *functions;
    int32_t nfunctions;
} xpio_submodule;

typedef struct xpio_enum {
    const char *name;           /* "socket option": for messages */
    int32_t count;
    const char *const *cases;
    const char *const *values;  /* each case's value type code (or NULL) */
    const char *prefix;         /* also accepted before a name ("SIG"), or NULL */
    const char *unknown;        /* an unknown name returns nil, unknown; NULL: raises */
} xpio_enum;

typedef struct xpio_record {
    const char *name;
    int32_t count;
    const char *const *fields;
    const char *const *types;
} xpio_record;

typedef struct xpio_kind {
    const char *name;           /* "socket": "xpio: socket is closed" */
    const char *metatable;      /* "xpio.socket": __name */
    int32_t holds_tasks;        /* a task queue: its user values map waiters to tasks */
    const xpio_entry *methods;
    int32_t nmethods;
    xpio_body close;            /* __close, and __gc before releasing: arg[0] is self */
    xpio_body describe;         /* __tostring: result 0 a label or nil, 1 a number */
    void (*release)(void *object); /* __gc: drop the userdata's reference */
} xpio_kind;

typedef struct xpio_module {
    const xpio_entry *functions;
    int32_t nfunctions;
    const xpio_submodule *submodules;
    int32_t nsubmodules;
    const xpio_kind *kinds;
    int32_t nkinds;
    const xpio_enum *enums;
    int32_t nenums;
    const xpio_record *records;
    int32_t nrecords;
} xpio_module;

/* ------------------------------------------- what Swift provides to C */

/* The generated description of the module (Glue.swift). */
const xpio_module *xpio_module_description(void);
/* Process-wide set-up at every load: SIGPIPE, environment switches. */
void xpio_start(void);
/* A Lua state loads XPIO for the first time (its closing sentinel is made);
 * xpio_stop is its pair, run once when that state closes: drop what is
 * kept beyond objects. */
void xpio_state_opened(void);
void xpio_stop(void);

/* The task queue's runtime half (Sources/XPIO/QueueExports.swift); C keeps
 * the tasks. A queue and a wait target are Swift objects (unretained). */
/* Scheduling is two steps, so that C can store the task under its waiter id
 * (which allocates) before the queue commits: reserve an id, then schedule
 * it or cancel it. A reservation lost to a memory error costs one slot. */
int32_t xpio_queue_reserve(xpio_call *call, void *queue);
int32_t xpio_queue_schedule(xpio_call *call, void *queue, int32_t waiter, void *target, int32_t readiness);
int32_t xpio_queue_cancel(void *queue, int32_t waiter);
int32_t xpio_queue_wait(xpio_call *call, void *queue, double timeout, int32_t has_timeout);
const int32_t *xpio_queue_ready(void *queue, int32_t *count);
void xpio_queue_delivered(void *queue);
int32_t xpio_queue_is_closed(void *queue);
void xpio_queue_close(void *queue);

/* ------------------------------------------- what C provides to Swift */

/* The TLS engine xpio/tls.so installed (`require "xpio.tls"`), or NULL. */
struct xpio_tls_provider;
extern const struct xpio_tls_provider *xpio_tls;
static inline const struct xpio_tls_provider *xpio_tls_engine_installed(void) { return xpio_tls; }

/* Native entries (the spec's `= native`): they keep Lua state. */
int xpio_native_setCurrentTask(lua_State *L);
int xpio_native_getCurrentTask(lua_State *L);
int xpio_native_tqueue_wait(lua_State *L);
int xpio_native_tqueue_close(lua_State *L);
int xpio_native_socket_lines(lua_State *L);
int xpio_native_env(lua_State *L);
int xpio_native_socket_tlsinfo(lua_State *L);
int xpio_native_socket_peer_certificate(lua_State *L);

#endif
