/*
 * What the C glue's files share. Private to this target: only
 * include/xpio_glue.h is visible to Swift (read the rule there).
 *
 *   module.c     luaopen_xpio: the module table, metatables, metamethods
 *   arguments.c  decoding arguments by type code; argument errors
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

/* Upvalues of every XPIO function: its entry (light userdata) and the
 * metatables of the object kinds, an array indexed by kind + 1. A blocking
 * function has its when_ partner as a third. */
#define XPIO_ENTRY_UPVALUE lua_upvalueindex(1)
#define XPIO_KINDS_UPVALUE lua_upvalueindex(2)
#define XPIO_PARTNER_UPVALUE lua_upvalueindex(3)

extern const xpio_module *xpio_description;

static inline const xpio_entry *xpio_current_entry(lua_State *L) {
    return (const xpio_entry *)lua_touserdata(L, XPIO_ENTRY_UPVALUE);
}

/* arguments.c */
/* Decodes the arguments of the running function into `call`, leaving
 * exactly one stack slot per parameter; raises on a bad one. Returns 0, or
 * XPIO_MESSAGE with call->message set when an enum's unknown name is to be
 * answered with nil, message (after every argument has been checked). */
int xpio_decode(lua_State *L, const xpio_entry *entry, xpio_call *call);
/* Raises "bad argument #arg to 'name' (message)", counting as the caller
 * wrote the call (self is not counted in s:m()). */
int xpio_argerror(lua_State *L, int arg, const char *message);
/* The payload slot of an object userdata of kind `kind` at `index`, or NULL. */
void **xpio_toobject(lua_State *L, int index, int kind);

/* results.c */
/* Makes the entry's result objects (empty userdata with their metatables)
 * above the arguments, before the body runs. */
void xpio_make_objects(lua_State *L, const xpio_entry *entry, xpio_call *call);
/* Turns a body's status into the function's results, or raises. */
int xpio_finish(lua_State *L, xpio_call *call, int status);
/* Pushes a failure's `nil, message` (status < 0 and not raising). */
int xpio_push_failure(lua_State *L, xpio_call *call, int status);
/* Runs the body of the running function: decode, make objects, call, finish. */
int xpio_call_function(lua_State *L);

/* blocking.c */
int xpio_call_blocking(lua_State *L);
void xpio_push_current_task(lua_State *L);

/* tasks.c */
int xpio_call_when(lua_State *L);
int xpio_call_lua(lua_State *L);

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

#endif
