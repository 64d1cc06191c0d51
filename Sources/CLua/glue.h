/*
 * What the C glue's files and the generated Glue.c share. Private to this
 * target: only include/xpio_glue.h is visible to Swift (read the rule there).
 *
 *   Glue.c       generated from Spec/ (Sources/Generator/Core/CGlueEmitter.swift):
 *                one C function per entry, checking its arguments into a
 *                struct of typed fields and calling its Swift body; the
 *                module's description (entries, kinds, enums)
 *   checks.c     the named checks Glue.c calls, one per kind of type;
 *                argument errors
 *   module.c     luaopen_xpio: the module table, metatables, metamethods
 *   results.c    pushing results and failures
 *   blocking.c   blocking functions (yield and try again), the current task
 *   tasks.c      scheduling tasks on queues, _dequeue, tqueue:wait
 *   lines.c      socket:lines, an iterator over the blocking readline
 */
#ifndef XPIO_GLUE_PRIVATE_H
#define XPIO_GLUE_PRIVATE_H

#include "xpio_glue.h"
#include "xpio_tls_abi.h"
#include <lua.h>
#include <lauxlib.h>

/* Upvalues of every XPIO function (xpio_push_closure makes them): its
 * entry (light userdata), or what else the function is about; the
 * metatables of the object kinds, an array indexed by kind + 1, followed
 * by the glue's names (below) and the current task; then the names again,
 * one upvalue each. */
#define XPIO_ENTRY_UPVALUE lua_upvalueindex(1)
#define XPIO_KINDS_UPVALUE lua_upvalueindex(2)

/* The strings the glue uses as task fields and as a result. Each is an
 * upvalue of every XPIO function: pushing one copies a value, about 17
 * instructions, where reading the kinds array took 51 and a
 * lua_pushliteral compares the C string with Lua's string cache (a strcmp)
 * on every push; a when_ call pushes four, each task a wait returns two.
 * Being kept alive, a name also never allocates, so clearing task fields in
 * a finalizer or undoing a failed schedule cannot fail. The kinds array
 * keeps them too, which is where a new closure takes them from. */
enum { XPIO_NAME_QUEUE, XPIO_NAME_DEQUEUE, XPIO_NAME_DEQUEUEDATA, XPIO_NAME_THREAD, XPIO_NAME_RETRY, XPIO_NNAMES };
#define XPIO_NAMES { "_queue", "_dequeue", "_dequeuedata", "_thread", "retry" }
#define XPIO_NUPVALUES (2 + XPIO_NNAMES)

/* Pops the value on top (upvalue 1) and pushes a closure of `f` with the
 * upvalues above, the kinds array taken from `kinds`. */
void xpio_push_closure(lua_State *L, lua_CFunction f, int kinds);

/* ---------------------------------------------------------- descriptions */

/* How Lua calls an entry. PLAIN, NATIVE and LUA: `function` does it all.
 * BLOCKING: `attempt` is the try_ form; C schedules the current task with
 * `wait_target` (its when_ partner's body) and yields (blocking.c). WHEN:
 * `function` checks the arguments and schedules the task (xpio_wait_with,
 * tasks.c) on what its body answers: what to wait on and for what (the
 * spec's [read] or [write], or what TLS needs). FIELD: `function` pushes a
 * value for the module table at load time. */
enum { XPIO_PLAIN = 0, XPIO_BLOCKING, XPIO_WHEN, XPIO_NATIVE, XPIO_FIELD, XPIO_LUA };

/* Room for any entry's checked arguments (Glue.c asserts each fits). */
#define XPIO_ARGS_SIZE 256
typedef union xpio_args {
    char bytes[XPIO_ARGS_SIZE];
    int64_t align_integer;
    double align_number;
    void *align_pointer;
} xpio_args;

typedef struct xpio_entry {
    const char *name;           /* the Lua name: "read", "socket" */
    int32_t role;
    int32_t nparams;            /* Lua parameters, self first */
    int32_t method;             /* a method: self is parameter 1 */
    lua_CFunction function;     /* PLAIN, WHEN, NATIVE, LUA, FIELD */
    /* BLOCKING: checks the arguments into `args` (raising on a bad one,
     * leaving at most nparams stack slots); answers NULL, or the message
     * of an enum's unknown name, to be answered with nil, message. */
    const char *(*check)(lua_State *L, xpio_args *args);
    /* BLOCKING: calls the Swift body with the checked arguments. */
    int32_t (*attempt)(xpio_call *call, xpio_args *args);
    /* BLOCKING: the when_ partner's body, on this entry's checked
     * arguments: what the call waits for after its try answered "retry". */
    int32_t (*wait_target)(xpio_call *call, xpio_args *args);
    int32_t whole;              /* BLOCKING: the parameter written whole, or -1:
                                   the body is tried again with call->progress
                                   advanced until call->remaining is 0, and
                                   result 0 counts every byte */
    int32_t turns;              /* BLOCKING: 1 its calls take turns on self's
                                   reads, 2 on its writes, 0 not (blocking.c) */
    const int32_t *objects;     /* the kinds of the objects returned */
    int32_t nobjects;
} xpio_entry;

/* A table of functions beside the module's own (`xpio.tls`), made when
 * that module is installed (module.c). */
typedef struct xpio_submodule {
    const char *name;           /* "xpio.tls" */
    const xpio_entry *functions;
    int32_t nfunctions;
} xpio_submodule;

typedef struct xpio_enum {
    const char *name;           /* "signame": for messages */
    int32_t count;
    const char *const *cases;
    const char *prefix;         /* also accepted before a name ("SIG"), or NULL */
    const char *unknown;        /* an unknown name returns nil, unknown; NULL: raises */
} xpio_enum;

typedef struct xpio_kind {
    const char *name;           /* "socket": "xpio: socket is closed" */
    const char *metatable;      /* "xpio.socket": __name */
    int32_t holds_tasks;        /* a task queue: its user values map waiters to tasks */
    const xpio_entry *methods;
    int32_t nmethods;
    void (*close)(void *object);                     /* __close, and __gc before releasing */
    int32_t (*describe)(void *object, xpio_call *call); /* __tostring: result 0 a label or nil, 1 a number */
    void (*release)(void *object);                   /* __gc: drop the userdata's reference */
} xpio_kind;

typedef struct xpio_module {
    const xpio_entry *functions;
    int32_t nfunctions;
    const xpio_submodule *submodules;
    int32_t nsubmodules;
    const xpio_kind *kinds;
    int32_t nkinds;
    const xpio_enum *const *enums;
    int32_t nenums;
    int32_t queue_kind;         /* the kind tasks are scheduled on */
} xpio_module;

/* The module as the spec describes it (Glue.c). */
extern const xpio_module xpio_description;

/* The line of tasks taking turns at an object's blocking reads or writes
 * (blocking.c): the index of its first task in the object's FIFO table,
 * and of the next free place. Equal (both 1) when the line is empty: the
 * path of every call that does not wait, with no Lua table to look at.
 * Places between may be nil (tasks that left, or were collected). */
typedef struct xpio_line {
    int32_t first, next;
} xpio_line;

/* An object's userdata (results.c makes them): the Swift object first (so
 * a pointer to it is the `void **` slot the glue passes around); its kind,
 * which is how an argument is recognised (xpio_toobject); then the lines
 * of its reads [0] and of its writes [1]. 32 bytes: with Lua's header and
 * its one user value, a 96-byte malloc block. */
typedef struct xpio_userdata {
    void *object;
    const xpio_kind *kind;
    xpio_line line[2];
} xpio_userdata;

/* The payload slot of an object userdata of kind `kind` at `index`, or
 * NULL. The userdata names its kind by the address of the kind's
 * description in this module, which no other library's userdata of the
 * same size can hold; a light userdata has no length. Two API calls, where
 * comparing metatables took six (getmetatable, the kinds upvalue, rawequal,
 * pop): every method call checks its self this way, and a blocking call
 * that waits checks its task's queue as well. */
void **xpio_toobject(lua_State *L, int index, int kind);

/* Pushes a name; only from a function xpio_push_closure made (every
 * entry, metatable method and continuation; `_dequeue` closures too). */
static inline lua_Integer xpio_name_index(int name) { return (lua_Integer)xpio_description.nkinds + 1 + name; }
static inline void xpio_push_name(lua_State *L, int name) {
    lua_pushvalue(L, lua_upvalueindex(3 + name));
}

/* The current task (xpio.setCurrentTask) is kept in the kinds upvalue too,
 * in the last place of its array part: reading it is an array read, where
 * the registry's hash table cost a lookup of about 140 instructions, and a
 * blocking call that waits reads it half a dozen times. Only functions with
 * the kinds upvalue read or set it. */
static inline lua_Integer xpio_current_task_index(void) { return xpio_name_index(XPIO_NNAMES); }
static inline void xpio_push_current_task(lua_State *L) {
    lua_rawgeti(L, XPIO_KINDS_UPVALUE, xpio_current_task_index());
}

static inline const xpio_entry *xpio_current_entry(lua_State *L) {
    return (const xpio_entry *)lua_touserdata(L, XPIO_ENTRY_UPVALUE);
}

/* ---------------------------------------------------------------- checks */

/* checks.c. A check of a value inside a table (or of one member of a
 * union) answers MATCHED, or MISMATCH/INVALID with the message pushed; the
 * argument's check then raises naming the argument and where in it the
 * bad value is:
 *   bad argument #1 to 'spawn' (args[2]: string expected, got table)
 *   bad argument #4 to 'spawn' (attrs.cwd must not contain NUL)
 *   bad argument #1 to 'read' (size must not be negative) */
enum { XPIO_MATCHED = 0, XPIO_MISMATCH, XPIO_INVALID };
enum { XPIO_ANY_STRING = 0, XPIO_CSTRING, XPIO_NAME };

/* One call's checking: the arguments as given, and the table anchoring
 * the lists and converted strings it makes (made on first need). */
typedef struct xpio_checker {
    lua_State *L;
    int given;               /* arguments given (before the stack was set to nparams) */
    int nparams;
    int scratch;             /* stack index of the anchoring table, or 0 */
    int anchors;
    const char *unknown;     /* an enum's unknown name's message, to answer */
} xpio_checker;

typedef int (*xpio_check)(xpio_checker *c, int index, xpio_item *out);

/* Starts checking the running function's arguments: drops any beyond
 * `nparams`. With `pads` (a native entry, which reads its arguments by
 * position after pushing values of its own) the left-out ones become nil
 * slots too, so that exactly nparams remain below what it pushes; other
 * entries pad only when a check may push (xpio_check_argument). */
static inline void xpio_checker_start(xpio_checker *c, lua_State *L, int nparams, int pads) {
    c->L = L;
    c->given = lua_gettop(L);
    c->nparams = nparams;
    c->scratch = 0;
    c->anchors = 0;
    c->unknown = NULL;
    if (c->given > nparams || (pads && c->given < nparams)) lua_settop(L, nparams);
}

/* Values (the MATCHED/MISMATCH/INVALID protocol above). */
int xpio_check_string(xpio_checker *c, int index, int mode, xpio_item *out);
int xpio_check_integer(xpio_checker *c, int index, int nonnegative, xpio_item *out);
int xpio_check_number(xpio_checker *c, int index, xpio_item *out);
int xpio_check_boolean(xpio_checker *c, int index, xpio_item *out);
int xpio_check_false(xpio_checker *c, int index, xpio_item *out);
int xpio_check_table(xpio_checker *c, int index, xpio_item *out);
int xpio_check_object(xpio_checker *c, int index, int kind, xpio_item *out);
int xpio_check_any(xpio_checker *c, int index, xpio_item *out);
int xpio_check_enum(xpio_checker *c, int index, const xpio_enum *e, xpio_item *out);
/* An optional value: none, nil or false is absent (which = -1), but false
 * is a value where a boolean is taken (`verify = false`). */
int xpio_check_optional(xpio_checker *c, int index, xpio_check check, int takes_false, xpio_item *out);
int xpio_check_array(xpio_checker *c, int index, xpio_check element, xpio_item *out);
int xpio_check_map(xpio_checker *c, int index, xpio_check key, xpio_check value, xpio_item *out);
int xpio_check_record(xpio_checker *c, int index, int32_t count, const char *const *fields, const xpio_check *checks,
                      xpio_item *out);
/* The first member that matches (which: its number); `expected` names
 * them all for the message ("number or string"). */
int xpio_check_union(xpio_checker *c, int index, int32_t count, const xpio_check *members, const char *expected,
                     xpio_item *out);

/* Arguments: raise on a bad one. `name` is the parameter's, for messages. */
void xpio_check_argument(xpio_checker *c, int arg, const char *name, xpio_check check, xpio_item *out);
/* Raises for argument `arg` after a check answered `status` (its message pushed). */
int xpio_argument_failed(xpio_checker *c, int arg, const char *name, int status);
/* Raises "bad argument #arg to 'name' (message)", counting as the caller
 * wrote the call (self is not counted in s:m()). */
int xpio_argerror(lua_State *L, int arg, const char *message);

/* The common argument types, inline on their fast path. */
static inline void *xpio_argument_object(xpio_checker *c, int arg, const char *name, int kind) {
    void **slot = xpio_toobject(c->L, arg, kind);
    if (!slot) {
        xpio_item item;
        xpio_argument_failed(c, arg, name, xpio_check_object(c, arg, kind, &item));
    }
    return *slot;
}

static inline int64_t xpio_argument_integer(xpio_checker *c, int arg, const char *name, int nonnegative) {
    int isnum;
    lua_Integer value = lua_tointegerx(c->L, arg, &isnum);
    if (!isnum || (nonnegative && value < 0)) {
        xpio_item item;
        xpio_argument_failed(c, arg, name, xpio_check_integer(c, arg, nonnegative, &item));
    }
    return (int64_t)value;
}

static inline double xpio_argument_number(xpio_checker *c, int arg, const char *name) {
    int isnum;
    lua_Number value = lua_tonumberx(c->L, arg, &isnum);
    if (!isnum) {
        xpio_item item;
        xpio_argument_failed(c, arg, name, xpio_check_number(c, arg, &item));
    }
    return (double)value;
}

static inline xpio_bytes xpio_argument_string(xpio_checker *c, int arg, const char *name, int mode) {
    xpio_item item;
    if (lua_type(c->L, arg) == LUA_TSTRING && mode == XPIO_ANY_STRING) {
        item.string.bytes = lua_tolstring(c->L, arg, &item.string.length);
        return item.string;
    }
    int status = xpio_check_string(c, arg, mode, &item);
    if (status != XPIO_MATCHED) xpio_argument_failed(c, arg, name, status);
    return item.string;
}

/* An optional compound argument left out. */
static inline void xpio_item_absent(xpio_item *item) {
    item->which = -1;
    item->count = 0;
    item->items = NULL;
    item->object = NULL;
    item->string.bytes = NULL;
    item->string.length = 0;
}

/* A string argument as a union's first member (which = 0). */
static inline void xpio_item_string(lua_State *L, int arg, xpio_item *item) {
    xpio_item_absent(item);
    item->which = 0;
    item->string.bytes = lua_tolstring(L, arg, &item->string.length);
}

/* 1 when argument `arg` is left out (none or nil, or false unless a
 * boolean is taken). */
static inline int xpio_argument_absent(lua_State *L, int arg, int takes_false) {
    int type = lua_type(L, arg);
    return type <= LUA_TNIL || (type == LUA_TBOOLEAN && !takes_false && !lua_toboolean(L, arg));
}

/* --------------------------------------------------------------- calling */

/* results.c */
/* Makes the entry's result objects (empty userdata with their metatables)
 * above the arguments, before the body runs. */
void xpio_make_objects(lua_State *L, const xpio_entry *entry, xpio_call *call);
/* Calls `attempt`, the body of an entry that makes objects (descriptors);
 * when the process has no descriptor left, collects the garbage once and
 * tries again (results.c). */
int32_t xpio_attempt_opening(lua_State *L, xpio_call *call, int32_t (*attempt)(xpio_call *, xpio_args *),
                             xpio_args *args);
/* Turns a body's status into the function's results, or raises. */
int xpio_finish(lua_State *L, xpio_call *call, int status);
/* Pushes a failure's `nil, message` (status < 0 and not raising). */
int xpio_push_failure(lua_State *L, xpio_call *call, int status);
/* An enum's unknown name: nil, message. */
int xpio_push_unknown(lua_State *L, const char *message);

/* blocking.c */
int xpio_call_blocking(lua_State *L);

/* tasks.c */
int xpio_wait_with(lua_State *L, int32_t (*target)(xpio_call *, xpio_args *), xpio_args *args, int task, int object);
/* An entry implemented in Lua: calls module `module` with the checked arguments. */
int xpio_call_lua(lua_State *L, const char *module, int nparams);

/* A socket's connection in the TLS engine (Sources/XPIO/TLSBinding.swift):
 * NULL when it has none; *closed set when the socket is closed. */
void *xpio_socket_tls_connection(void *socket, int *closed);
/* 1 when a blocking read of the socket should wait for readability before
 * its first try (Socket.readWouldFail, Sources/XPIO/TLSBinding.swift). */
int xpio_socket_read_would_fail(void *socket);
/* Unschedules every task of the queue at `queue` without making it ready. */
void xpio_drop_tasks(lua_State *L, int queue);
/* Schedules the task at `task` ready at once on its _queue; 1, or 0. */
int xpio_schedule_now(lua_State *L, int task);
/* The Swift object in the checked object argument at `index` (NULL once collected). */
static inline void *xpio_object_at(lua_State *L, int index) { return *(void **)lua_touserdata(L, index); }

/* Native entries (the spec's `= native`): they keep Lua state. Each is
 * called by its entry's generated function once the arguments are checked. */
int xpio_native_setCurrentTask(lua_State *L);
int xpio_native_getCurrentTask(lua_State *L);
int xpio_native_tqueue_wait(lua_State *L);
int xpio_native_tqueue_close(lua_State *L);
int xpio_native_socket_lines(lua_State *L);
int xpio_native_env(lua_State *L);
int xpio_native_socket_tlsinfo(lua_State *L);
int xpio_native_socket_peer_certificate(lua_State *L);

#endif
