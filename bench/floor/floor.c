/*
 * floor: the thinnest Lua binding with XPIO's try_/when_ shape, built by
 * bench/run.sh into build/bench/floor.so. Its loops (the .lua files next to
 * this one) run the same Lua as XPIO's, so the gap between the two is what
 * XPIO's binding costs over the least any binding of this API can cost: the
 * "Lua floor".
 *
 * What makes it thin, on purpose:
 * - descriptors are plain integers (no userdata, no metatable lookup, no
 *   closed-descriptor or reused-number checks); only the queue is a userdata;
 * - arguments are checked with luaL_check* and nothing else;
 * - one waiting task per descriptor and direction, kept in one table.
 * What it keeps from XPIO, because it decides the system calls:
 * - try_read / try_write answer nil, "retry" on EAGAIN;
 * - a queue's interest is level-triggered and persistent, as in
 *   Sources/Runtime/TaskQueue.swift: epoll_ctl runs when a direction is
 *   first wanted and again only when an event arrives for a direction
 *   nobody waits on (then the interest shrinks);
 * - wait returns a fresh array of the ready tasks.
 * With task_fields(true), it also keeps the part of the tasks' contract
 * that any binding of this API must keep (xpio-seed.txt: "task._dequeue
 * ... is assigned when the task is scheduled ... and should be nil when the
 * task is not currently scheduled", with _dequeuedata beside it; a
 * scheduler's timeouts and cancellation use them): when_ reads the queue
 * from task._queue, refuses a task already scheduled, and sets the two
 * fields; wait clears them. That is the floor for XPIO's when_ and wait
 * rows that pays for what the user is promised; without it the floor
 * stores the task in one table and nothing more.
 * Not for use outside the benchmarks: a descriptor a queue watches must not
 * be closed while the queue lives (nothing forgets it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define QUEUE_META "floor.queue"
#define READ_BITS (EPOLLIN | EPOLLRDHUP)
#define FAIL_BITS (EPOLLERR | EPOLLHUP)
#define WAITS_READ 1u
#define WAITS_WRITE 2u
#define MAX_READ 65536 /* as XPIO: at most 64 KiB per read */

/* What the queue knows of one descriptor. */
typedef struct watch {
    uint32_t interest; /* what epoll watches; 0: not registered */
    uint32_t waiting;  /* WAITS_READ, WAITS_WRITE: a task is stored */
} watch;

/* The queue's userdata. Its user value 1 is the task table:
 * 2 * fd + 1 -> the reading task, 2 * fd + 2 -> the writing task. */
typedef struct queue {
    int epfd;
    watch *watches; /* indexed by descriptor number */
    int nwatches;
    struct epoll_event *events;
    int capacity;
    int filled;  /* the last wait filled the buffer: grow before the next */
    int waiting; /* tasks stored */
} queue;

/* task_fields(on): see the header. Upvalues of every function: the names
 * "_queue", "_dequeue", "_dequeuedata" (pushing a literal would compare it
 * with Lua's string cache each time). */
static int task_fields;
#define NAME_QUEUE lua_upvalueindex(1)
#define NAME_DEQUEUE lua_upvalueindex(2)
#define NAME_DEQUEUEDATA lua_upvalueindex(3)

/* One buffer for every read, as XPIO has: a read copies it into a string. */
static char read_buffer[MAX_READ];

static int push_failure(lua_State *L, int code) {
    lua_pushnil(L);
    if (code == EAGAIN || code == EWOULDBLOCK) lua_pushliteral(L, "retry");
    else lua_pushstring(L, strerror(code));
    return 2;
}

static int check_fd(lua_State *L, int arg) {
    lua_Integer fd = luaL_checkinteger(L, arg);
    luaL_argcheck(L, fd >= 0 && fd <= INT_MAX, arg, "not a descriptor");
    return (int)fd;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- I/O ---- */

/* try_read(fd, n): up to n bytes, nil at end of stream, nil, "retry". */
static int l_try_read(lua_State *L) {
    int fd = check_fd(L, 1);
    lua_Integer size = luaL_checkinteger(L, 2);
    luaL_argcheck(L, size >= 0, 2, "must not be negative");
    if (size == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    ssize_t got = read(fd, read_buffer, size < MAX_READ ? (size_t)size : MAX_READ);
    if (got > 0) {
        lua_pushlstring(L, read_buffer, (size_t)got);
        return 1;
    }
    if (got == 0) {
        lua_pushnil(L);
        return 1;
    }
    return push_failure(L, errno);
}

/* try_write(fd, s): how many bytes went, or nil, "retry". */
static int l_try_write(lua_State *L) {
    int fd = check_fd(L, 1);
    size_t length;
    const char *bytes = luaL_checklstring(L, 2, &length);
    ssize_t sent = write(fd, bytes, length);
    if (sent < 0) return push_failure(L, errno);
    lua_pushinteger(L, (lua_Integer)sent);
    return 1;
}

/* ---- descriptors ---- */

/* socketpair(): two connected AF_UNIX stream descriptors. */
static int l_socketpair(lua_State *L) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return push_failure(L, errno);
    lua_pushinteger(L, fds[0]);
    lua_pushinteger(L, fds[1]);
    return 2;
}

/* tcp_socket(): a non-blocking IPv4 TCP socket. */
static int l_tcp_socket(lua_State *L) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return push_failure(L, errno);
    lua_pushinteger(L, fd);
    return 1;
}

static void loopback(struct sockaddr_in *addr, int port) {
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr->sin_port = htons((uint16_t)port);
}

/* listen_loopback(fd): bind to 127.0.0.1, any port, and listen; the port. */
static int l_listen_loopback(lua_State *L) {
    int fd = check_fd(L, 1);
    struct sockaddr_in addr;
    socklen_t length = sizeof addr;
    loopback(&addr, 0);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &length) != 0)
        return push_failure(L, errno);
    lua_pushinteger(L, ntohs(addr.sin_port));
    return 1;
}

/* try_connect(fd, port): true once connected to 127.0.0.1:port, nil, "retry"
 * while in progress (call again when writable). */
static int l_try_connect(lua_State *L) {
    int fd = check_fd(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    luaL_argcheck(L, port > 0 && port < 65536, 2, "not a port");
    struct sockaddr_in addr;
    loopback(&addr, (int)port);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 || errno == EISCONN) {
        lua_pushboolean(L, 1);
        return 1;
    }
    return push_failure(L, errno == EINPROGRESS || errno == EALREADY ? EAGAIN : errno);
}

/* try_accept(fd): the accepted descriptor, or nil, "retry". */
static int l_try_accept(lua_State *L) {
    int fd = accept4(check_fd(L, 1), NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return push_failure(L, errno);
    lua_pushinteger(L, fd);
    return 1;
}

/* nodelay(fd): TCP_NODELAY on. */
static int l_nodelay(lua_State *L) {
    int one = 1;
    if (setsockopt(check_fd(L, 1), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) return push_failure(L, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* close(fd): only descriptors no live queue watches (see the top). */
static int l_close(lua_State *L) {
    if (close(check_fd(L, 1)) != 0) return push_failure(L, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* gettime(): a monotonic clock in seconds, for the loops' timing. */
static int l_gettime(lua_State *L) {
    lua_pushnumber(L, now());
    return 1;
}

/* cputime(): this thread's CPU time in seconds: the micro-benchmark's clock
 * when the machine is busy (MICRO_CLOCK=cpu), where wall time counts the
 * slices other processes took. */
static int l_cputime(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

/* ---- the queue ---- */

static queue *check_queue(lua_State *L) {
    queue *q = luaL_checkudata(L, 1, QUEUE_META);
    if (q->epfd < 0) luaL_error(L, "floor: the queue is closed");
    return q;
}

static int l_dequeue(lua_State *L);

/* queue(): a new queue (an epoll set and its tasks). */
static int l_queue(lua_State *L) {
    queue *q = lua_newuserdatauv(L, sizeof *q, 2);
    memset(q, 0, sizeof *q);
    q->epfd = -1;
    luaL_setmetatable(L, QUEUE_META);
    q->capacity = 64;
    q->events = malloc(sizeof *q->events * (size_t)q->capacity);
    if (!q->events) return luaL_error(L, "floor: out of memory");
    q->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (q->epfd < 0) return push_failure(L, errno);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, NAME_QUEUE);
    lua_pushvalue(L, NAME_DEQUEUE);
    lua_pushvalue(L, NAME_DEQUEUEDATA);
    lua_pushvalue(L, -4);
    lua_pushcclosure(L, l_dequeue, 4);
    lua_setiuservalue(L, -2, 2);
    return 1;
}

static int queue_gc(lua_State *L) {
    queue *q = luaL_checkudata(L, 1, QUEUE_META);
    if (q->epfd >= 0) close(q->epfd);
    q->epfd = -1;
    free(q->watches);
    free(q->events);
    q->watches = NULL;
    q->events = NULL;
    return 0;
}

/* Changes what epoll watches on fd from `old` to `new`: 0 on success. */
static int update(queue *q, int fd, uint32_t old, uint32_t new) {
    struct epoll_event ev = {.events = new, .data.fd = fd};
    int op = old == 0 ? EPOLL_CTL_ADD : new == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    return epoll_ctl(q->epfd, op, fd, &ev);
}

static watch *watch_of(lua_State *L, queue *q, int fd) {
    if (fd >= q->nwatches) {
        int n = q->nwatches ? q->nwatches : 64;
        while (n <= fd) n *= 2;
        watch *bigger = realloc(q->watches, sizeof *bigger * (size_t)n);
        if (!bigger) luaL_error(L, "floor: out of memory");
        memset(bigger + q->nwatches, 0, sizeof *bigger * (size_t)(n - q->nwatches));
        q->watches = bigger;
        q->nwatches = n;
    }
    return &q->watches[fd];
}

/* when_read(q, fd, task) and when_write(q, fd, task): store the task until
 * fd is ready; grow the interest only when this direction is new to it. */
static int schedule(lua_State *L, uint32_t flag, uint32_t wanted) {
    queue *q = check_queue(L);
    int fd = check_fd(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    watch *w = watch_of(L, q, fd);
    if (w->waiting & flag) return luaL_error(L, "floor: a task already waits on fd %d", fd);
    lua_Integer key = 2 * (lua_Integer)fd + (flag == WAITS_READ ? 1 : 2);
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, key);
    if ((w->interest & wanted) != wanted) {
        if (update(q, fd, w->interest, w->interest | wanted) != 0) {
            int code = errno;
            lua_pushnil(L);
            lua_rawseti(L, -2, key);
            return push_failure(L, code);
        }
        w->interest |= wanted;
    }
    w->waiting |= flag;
    q->waiting++;
    lua_pushboolean(L, 1);
    return 1;
}

static void clear_fields(lua_State *L, int task) {
    lua_pushvalue(L, NAME_DEQUEUE);
    lua_pushnil(L);
    lua_rawset(L, task);
    lua_pushvalue(L, NAME_DEQUEUEDATA);
    lua_pushnil(L);
    lua_rawset(L, task);
}

/* The task-fields mode's when_: the queue from task._queue (moved to 1,
 * where schedule finds it), the task not scheduled yet; then schedule, and
 * the fields. The dequeue function is the queue's user value 2. */
static int schedule_with_fields(lua_State *L, uint32_t flag, uint32_t wanted) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushvalue(L, NAME_QUEUE);
    lua_rawget(L, 3);
    lua_replace(L, 1);
    lua_pushvalue(L, NAME_DEQUEUE);
    if (lua_rawget(L, 3) != LUA_TNIL) return luaL_error(L, "floor: the task is already scheduled");
    lua_pop(L, 1);
    lua_pushvalue(L, NAME_DEQUEUEDATA);
    lua_pushinteger(L, 2 * lua_tointeger(L, 2) + (flag == WAITS_READ ? 1 : 2)); /* schedule checks both */
    lua_rawset(L, 3);
    lua_pushvalue(L, NAME_DEQUEUE);
    lua_getiuservalue(L, 1, 2);
    lua_rawset(L, 3);
    int n = schedule(L, flag, wanted);
    if (!lua_toboolean(L, -n)) clear_fields(L, 3);
    return n;
}

/* task:_dequeue() (upvalue 4: the queue): forgets the task. */
static int l_dequeue(lua_State *L) {
    queue *q = lua_touserdata(L, lua_upvalueindex(4));
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, NAME_DEQUEUEDATA);
    lua_Integer key = lua_rawget(L, 1) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
    lua_getiuservalue(L, lua_upvalueindex(4), 1);
    if (key < 1 || lua_rawgeti(L, -1, key) != LUA_TTABLE || !lua_rawequal(L, -1, 1)) return 0;
    lua_pushnil(L);
    lua_rawseti(L, -3, key);
    int fd = (int)((key - 1) / 2);
    q->watches[fd].waiting &= ~(key % 2 ? WAITS_READ : WAITS_WRITE);
    q->waiting--;
    clear_fields(L, 1);
    lua_pushboolean(L, 1);
    return 1;
}

static int l_when_read(lua_State *L) {
    return task_fields ? schedule_with_fields(L, WAITS_READ, READ_BITS) : schedule(L, WAITS_READ, READ_BITS);
}
static int l_when_write(lua_State *L) {
    return task_fields ? schedule_with_fields(L, WAITS_WRITE, EPOLLOUT) : schedule(L, WAITS_WRITE, EPOLLOUT);
}

static int l_task_fields(lua_State *L) {
    task_fields = lua_toboolean(L, 1);
    return 0;
}

/* Moves the task at `key` of the table at `tasks` to the end of `ready`. */
static void take(lua_State *L, int tasks, int ready, lua_Integer key, lua_Integer *count) {
    lua_rawgeti(L, tasks, key);
    if (task_fields) clear_fields(L, lua_gettop(L));
    lua_rawseti(L, ready, ++*count);
    lua_pushnil(L);
    lua_rawseti(L, tasks, key);
}

/* One event: wake the tasks it is for; shrink the interest in a direction
 * nobody waited on (as TaskQueue.dispatch does). */
static void dispatch(lua_State *L, queue *q, const struct epoll_event *ev, int tasks, int ready, lua_Integer *count) {
    int fd = ev->data.fd;
    if (fd < 0 || fd >= q->nwatches || q->watches[fd].interest == 0) return;
    watch *w = &q->watches[fd];
    uint32_t bits = ev->events;
    int readable = (bits & (READ_BITS | FAIL_BITS)) != 0;
    int writable = (bits & (EPOLLOUT | FAIL_BITS)) != 0;
    uint32_t had = w->waiting, interest = w->interest;
    if (readable && (had & WAITS_READ)) {
        take(L, tasks, ready, 2 * (lua_Integer)fd + 1, count);
        w->waiting &= ~WAITS_READ;
        q->waiting--;
    }
    if (writable && (had & WAITS_WRITE)) {
        take(L, tasks, ready, 2 * (lua_Integer)fd + 2, count);
        w->waiting &= ~WAITS_WRITE;
        q->waiting--;
    }
    if (readable && !(had & WAITS_READ)) interest &= ~(uint32_t)READ_BITS;
    if ((bits & EPOLLOUT) && !(had & WAITS_WRITE)) interest &= ~(uint32_t)EPOLLOUT;
    if ((bits & FAIL_BITS) && !had) interest = 0;
    if (interest != w->interest && (update(q, fd, w->interest, interest) == 0 || interest == 0)) w->interest = interest;
}

static int milliseconds(double seconds) {
    if (seconds <= 0) return 0;
    double ms = seconds * 1000;
    if (ms >= INT_MAX) return INT_MAX;
    int whole = (int)ms;
    return whole < ms ? whole + 1 : whole;
}

/* wait(q [, timeout]): a new array of the ready tasks, each forgotten by the
 * queue (maybe empty at the timeout); nil when nothing waits and there is no
 * timeout. Readiness nobody waits for does not end the wait early. */
static int l_wait(lua_State *L) {
    queue *q = check_queue(L);
    int has_timeout = !lua_isnoneornil(L, 2);
    double timeout = has_timeout ? luaL_checknumber(L, 2) : -1;
    if (!has_timeout && q->waiting == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_settop(L, 2);
    lua_getiuservalue(L, 1, 1);
    int tasks = 3, ready = 0;
    lua_Integer count = 0;
    int ms = has_timeout ? milliseconds(timeout) : -1;
    double deadline = ms > 0 ? now() + timeout : 0; /* a clock read only when it can matter */
    for (;;) {
        if (q->filled) {
            struct epoll_event *bigger = realloc(q->events, sizeof *bigger * (size_t)q->capacity * 2);
            if (!bigger) return luaL_error(L, "floor: out of memory");
            q->events = bigger;
            q->capacity *= 2;
            q->filled = 0;
        }
        int n = epoll_wait(q->epfd, q->events, q->capacity, ms);
        if (n < 0) {
            if (errno != EINTR) return push_failure(L, errno);
            n = 0;
        }
        q->filled = n == q->capacity;
        if (!ready) {
            lua_createtable(L, n, 0);
            ready = lua_gettop(L);
        }
        for (int i = 0; i < n; i++) dispatch(L, q, &q->events[i], tasks, ready, &count);
        if (count > 0 || ms == 0) break;
        if (ms > 0) {
            double left = deadline - now();
            if (left <= 0) break;
            ms = milliseconds(left);
        }
    }
    return 1;
}

/* waiting(q): how many tasks the queue holds. */
static int l_waiting(lua_State *L) {
    lua_pushinteger(L, check_queue(L)->waiting);
    return 1;
}

int luaopen_floor(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"try_read", l_try_read},       {"try_write", l_try_write},   {"when_read", l_when_read},
        {"when_write", l_when_write},   {"wait", l_wait},             {"waiting", l_waiting},
        {"queue", l_queue},             {"socketpair", l_socketpair}, {"tcp_socket", l_tcp_socket},
        {"listen_loopback", l_listen_loopback}, {"try_connect", l_try_connect}, {"try_accept", l_try_accept},
        {"nodelay", l_nodelay},         {"close", l_close},           {"gettime", l_gettime},
        {"cputime", l_cputime},         {"task_fields", l_task_fields},
        {NULL, NULL},
    };
    signal(SIGPIPE, SIG_IGN); /* as XPIO: a write to a closed peer fails, it does not kill */
    if (luaL_newmetatable(L, QUEUE_META)) {
        lua_pushcfunction(L, queue_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlibtable(L, functions);
    lua_pushliteral(L, "_queue");
    lua_pushliteral(L, "_dequeue");
    lua_pushliteral(L, "_dequeuedata");
    luaL_setfuncs(L, functions, 3);
    return 1;
}
