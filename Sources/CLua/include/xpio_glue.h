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
 *   1. Each entry's own C function (generated from the spec: Glue.c)
 *      checks its arguments into typed, named fields, raising argument
 *      errors, and makes the objects it returns before anything happens.
 *   2. It calls the entry's Swift body (Glue.swift, @_cdecl) with those
 *      fields and an `xpio_call`. Swift does the work with plain C values,
 *      writes results into the call, and returns a status. It can make no
 *      Lua error: it has no Lua to call.
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

/* ------------------------------------------------------------ arguments */

/* A string argument: bytes that stay valid while the call runs, and
 * NUL-terminated (Lua guarantees it). `bytes` is NULL for an optional
 * string left out. */
typedef struct xpio_bytes {
    const char *bytes;
    size_t length;
} xpio_bytes;

/* One checked value of a compound argument (an array's element, a map's
 * key or value, a record's field, a union, an option's value): the fields
 * its type uses, filled by the generated checks (Glue.c). */
typedef struct xpio_item {
    int32_t which;            /* a union: the member that matched, from 0;
                                 -1: absent (an optional value left out) */
    int32_t count;            /* items: how many */
    int64_t integer;          /* an integer, a size, a boolean (0 or 1), an enum's case */
    double number;
    xpio_bytes string;
    void *object;             /* an object (unretained; NULL once collected) */
    const struct xpio_item *items; /* an array's elements, a map's keys and
                                      values in turn, a record's fields in
                                      spec order */
} xpio_item;

/* ---------------------------------------------------------------- results */

/* What an `xpio_value` (a result) holds. */
enum {
    XPIO_NIL = 1,    /* nil */
    XPIO_BOOLEAN,    /* u.integer: 0 or 1 */
    XPIO_INTEGER,    /* u.integer */
    XPIO_NUMBER,     /* u.number */
    XPIO_STRING,     /* u.string, length bytes */
    XPIO_OBJECT,     /* one of the objects made for the call: made[count] */
    XPIO_CASE,       /* an enum's case: count its index, length the enum's */
    XPIO_LIST,       /* u.list, count values */
    XPIO_ARGUMENT,   /* u.index: the Lua argument of that number, as given */
    XPIO_OBJECTS,    /* u.list points to count retained objects (void *) of kind length */
    XPIO_TARGET      /* a when body's answer: u.object, a runtime Descriptor */
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

#define XPIO_MAX_RESULTS 4

/* One call's answer from its Swift body: the results, and the payload
 * slots of the objects made before the body ran. */
typedef struct xpio_call {
    xpio_value result[XPIO_MAX_RESULTS];
    /* The payload slots of the objects made before the body runs, in the
     * order of the entry's `objects`: the body stores a retained object in
     * each one it returns. */
    void **object[XPIO_MAX_RESULTS];
    int32_t object_slot[XPIO_MAX_RESULTS];
    /* A failure's details (see the statuses below). Messages are static. */
    const char *message;
    int32_t code;
    /* A `whole` entry (glue.h, xpio_entry.whole): C sets `progress` to the
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
    XPIO_ARGERROR = -5  /* raise: bad argument #code (message) */
};

/* What a waiter waits for; XPIO_PARKED: nothing but a dequeue (a task
 * behind another's turn on a socket, until that one hands the turn on). */
enum { XPIO_READABLE = 0, XPIO_WRITABLE = 1, XPIO_PARKED = 2 };

/* Element access for Swift, which sees C arrays as tuples. */
static inline xpio_value *xpio_result(xpio_call *call, int32_t i) { return &call->result[i]; }
/* Stores a retained object in made object `i`, as result `position`. */
static inline void xpio_store_object(xpio_call *call, int32_t position, int32_t i, void *object) {
    *call->object[i] = object;
    call->result[position].tag = XPIO_OBJECT;
    call->result[position].count = i;
}

/* ------------------------------------------- what Swift provides to C */

/* Process-wide set-up at every load: SIGPIPE, environment switches. */
void xpio_start(void);
/* A Lua state loads XPIO for the first time (its closing sentinel is made);
 * xpio_stop is its pair, run once when that state closes: drop what is
 * kept beyond objects. */
void xpio_state_opened(void);
void xpio_stop(void);

/* The task queue's runtime half (Sources/XPIO/QueueExports.swift); C keeps
 * the tasks. A queue and a wait target are Swift objects (unretained). */
/* C stores the task under the id the queue names next (storing allocates,
 * and may raise), then schedules, which hands out that id or fails with
 * nothing kept: a memory error while storing leaves the queue untouched.
 * `is_new`: 1 when the id was never handed out before (every id below
 * xpio_queue_ids_used was); `serial`: the number that, with the id, names
 * this scheduling (the task's _dequeuedata holds both). */
int32_t xpio_queue_next_waiter(void *queue, int32_t *is_new, uint32_t *serial);
int32_t xpio_queue_ids_used(void *queue);
int32_t xpio_queue_schedule(xpio_call *call, void *queue, void *target, int32_t readiness);
int32_t xpio_queue_cancel(void *queue, int32_t waiter);
/* 1 + how many tasks are ready (the ready list: xpio_queue_ready), 0 when
 * nothing waits and there is no timeout, or a failure. */
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

#endif
