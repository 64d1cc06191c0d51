/*
 * oom_host: runs a Lua scenario with an allocator that fails, and checks
 * that XPIO survives it (issue 14, the out-of-memory sweep).
 *
 * XPIO's claim is that no Lua error, a memory error included, unwinds
 * through a Swift frame: only C touches the Lua state, before and after the
 * Swift body. This host makes every allocation of a scenario fail in turn
 * and checks, for each, that the process
 *   - does not crash or hang (each run is a forked child; a signal or the
 *     alarm is reported with N),
 *   - ends the scenario normally or with a "not enough memory" error,
 *   - after lua_close has the same descriptors, signal mask and signal
 *     handlers as before lua_newstate, no child process left (XPIO's reaper
 *     threads get a short wait), and 0 bytes left in the allocator.
 *
 * A scenario is a Lua file whose chunk, run before counting starts (its
 * set-up, not swept), returns a function: the scenario proper, run under
 * lua_pcall with the allocator armed. The global OOM_MODE is "persist" or
 * "once"; a scenario may set OOM_NOTE to report an expected loss.
 *
 * Usage: oom_host [options] scenario.lua
 *   -c            count: one run without failures; print its allocations
 *   -s A:B:S      sweep N = A, A+S, ... up to B (B = -1: the counted total)
 *   -n K          sweep about K points: the stride is the count / K
 *   -o offset     with -n: start at offset % stride (to cover other points)
 *   -m persist    every growing request from the (N+1)th on fails (default)
 *   -m once       only the (N+1)th fails (and Lua's retry of it after its
 *                 emergency collection), so the scenario can go on
 *   -p module     require it before counting starts (repeatable; default
 *                 "xpio"; "-p -" requires nothing, sweeping module loading)
 *   -l name       the scenario's name in reports (default: the file's)
 *   -W            warm up: one run without failures in the child before
 *                 the baselines are taken (for process-wide state an XPIO
 *                 backend creates once, like the SIGCHLD pipe)
 *   -t seconds    the alarm of each run (default 20)
 *   -w ms         how long to wait after lua_close for children to be
 *                 reaped and descriptors closed (default 2000; it ends
 *                 as soon as all is back, so only a failing run waits)
 *   -P            pin xpio.so: make it RTLD_NODELETE before lua_close, so
 *                 that lua_close does not unmap it. Without it a reaper
 *                 thread XPIO left (a collected running child) returns
 *                 into unmapped code and the process dies (a bug, see
 *                 Tests/oom/README.md); -P lets the sweep test the rest.
 *   -X            after lua_close, run /bin/true and wait for it, as a host
 *                 that goes on would (a SIGCHLD comes then)
 *   -K            keep failing through lua_close (persist mode): the
 *                 finalizers run with no memory; a __gc Lua cannot call
 *                 then is Lua's loss, so this is for exploring, not a check
 *   -S            print the offsets of the xpio.so frames on the stacks
 *                 of failing requests ("xpio frames: ..."), for run.sh
 *   -T            trace: print where each injected failure happens (the
 *                 Lua stack and the C stack; use an unstripped xpio.so)
 *   -q            print failures only, then the summary
 * Paths: package.path and package.cpath come from LUA_PATH and LUA_CPATH,
 * as luaL_openlibs reads them (";;" is the default path).
 *
 * The summary: "<name>: T allocation points, S swept, C crashes, L leaks,
 * E errors (ends: ...)", then notes (expected losses the scenario saw),
 * Lua warnings and, with -S, the frames. Exit status 0 when nothing failed.
 */
#define _GNU_SOURCE /* dl_iterate_phdr, RTLD_NODELETE */
#include "oom_host.h"
#include <lualib.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------ allocator */

/* -T: where the failing request comes from, on stderr: the main thread's
 * Lua stack (a request made in a coroutine shows the resume) and the C
 * stack. Disarmed while it runs, since lua_getinfo may allocate. */
static void trace_failure(heap *h, size_t nsize) {
    int armed = h->armed;
    h->armed = 0;
    fprintf(stderr, "-- failing request %ld (%zu bytes); Lua stack:\n", h->count, nsize);
    lua_Debug ar;
    for (int level = 0; h->L && lua_getstack(h->L, level, &ar); level++) {
        lua_getinfo(h->L, "Sln", &ar);
        fprintf(stderr, "   %s:%d %s\n", ar.short_src, ar.currentline, ar.name ? ar.name : "?");
    }
    void *frames[32];
    int n = backtrace(frames, 32);
    fprintf(stderr, "-- C stack:\n");
    backtrace_symbols_fd(frames, n, 2);
    h->armed = armed;
}

/* -S: the frames of xpio.so on the stack of a failing request, as offsets
 * in the file, for run.sh to name with addr2line: each must be a function
 * of the C glue (Sources/CLua), never Swift. Disarmed: backtrace may load
 * libgcc_s and dladdr may allocate (with malloc, not Lua's allocator). */
static void record_stack(heap *h) {
    int armed = h->armed;
    h->armed = 0;
    void *frames[64];
    int n = backtrace(frames, 64);
    for (int i = 0; i < n; i++) {
        Dl_info info;
        if (!dladdr(frames[i], &info) || !info.dli_fname) continue;
        const char *base = strrchr(info.dli_fname, '/');
        if (strcmp(base ? base + 1 : info.dli_fname, "xpio.so") != 0) continue;
        /* A return address: the call is the byte before it. */
        unsigned long offset = (unsigned long)((char *)frames[i] - (char *)info.dli_fbase) - 1;
        add_frame(h->frames, &h->nframes, MAX_FRAMES, offset);
    }
    h->armed = armed;
}

/* Lua's allocator: counts growing requests once armed and fails the one
 * the sweep chose. Requests that shrink or free never fail (Lua assumes
 * they cannot). With block == NULL, osize is a type tag, not a size. */
static void *heap_alloc(void *ud, void *block, size_t osize, size_t nsize) {
    heap *h = ud;
    size_t old = block ? osize : 0;
    if (nsize == 0) {
        free(block);
        h->live -= old;
        return NULL;
    }
    if (h->armed && (!block || nsize > osize)) {
        int fail = 0;
        if (h->once_retry && block == h->failed_block && osize == h->failed_osize && nsize == h->failed_nsize) {
            fail = 1; /* Lua's retry after its emergency collection */
        } else if (h->limit >= 0 && h->count >= h->limit && (h->persist || h->count == h->limit)) {
            fail = 1;
        }
        h->once_retry = 0;
        if (fail) {
            if (h->trace) trace_failure(h, nsize);
            if (h->stacks) record_stack(h);
            h->failures++;
            if (!h->persist && h->count == h->limit) {
                h->count++; /* the next request is not the chosen one */
                h->once_retry = 1;
                h->failed_block = block;
                h->failed_osize = osize;
                h->failed_nsize = nsize;
            }
            return NULL;
        }
        h->count++;
    }
    void *p = realloc(block, nsize);
    if (p) h->live += nsize - old;
    return p;
}

/* Warnings (an error in a __gc metamethod is one) are kept for the report:
 * a finalizer that did not run may be why a descriptor leaked. */
static void warn_keep(void *ud, const char *message, int tocont) {
    heap *h = ud;
    (void)tocont;
    if (*message == '@') return; /* control messages: "@on", "@off" */
    size_t used = strlen(h->warning);
    if (used + 1 < sizeof h->warning) snprintf(h->warning + used, sizeof h->warning - used, "%s", message);
}

/* ------------------------------------------------------------------ pin */

/* dl_iterate_phdr callback: pins every loaded object named xpio.so. */
static int pin_one(struct dl_phdr_info *info, size_t size, void *unused) {
    (void)size, (void)unused;
    const char *name = info->dlpi_name, *base = strrchr(name, '/');
    if (strcmp(base ? base + 1 : name, "xpio.so") == 0)
        (void)dlopen(name, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE); /* the reference is never closed */
    return 0;
}

static void pin_xpio(void) { dl_iterate_phdr(pin_one, NULL); }

/* ------------------------------------------------------------------ run */

/* The error message is what a memory error leaves: "not enough memory",
 * alone or with a traceback a scheduler appended (xpio.sched does), or as
 * require reports a module whose loading failed ("error loading module
 * 'm' from file 'f':\n\tnot enough memory"). */
static int is_memory_message(const char *m) {
    static const char text[] = "not enough memory", loading[] = "error loading module ", tail[] = ":\n\tnot enough memory";
    if (!m) return 0;
    if (strncmp(m, text, sizeof text - 1) == 0 && (m[sizeof text - 1] == 0 || m[sizeof text - 1] == '\n')) return 1;
    size_t n = strlen(m);
    return strncmp(m, loading, sizeof loading - 1) == 0 && n >= sizeof tail - 1 && strcmp(m + n - (sizeof tail - 1), tail) == 0;
}

static int require_module(lua_State *L, const char *name, result *r) {
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    if (lua_pcall(L, 1, 0, 0) == LUA_OK) return 0;
    snprintf(r->message, sizeof r->message, "setup: require \"%s\": %s", name, lua_tostring(L, -1));
    r->outcome = OUTCOME_SETUP;
    return -1;
}

/* One run: state, modules, scenario under lua_pcall with the allocator
 * failing at `limit` (-1: never), close. Fills the outcome and the error. */
static void run_scenario(const options *o, long limit, heap *h, result *r) {
    memset(h, 0, sizeof *h);
    h->limit = limit;
    h->persist = o->persist;
    h->trace = o->trace;
    h->stacks = o->stacks;
    lua_State *L = lua_newstate(heap_alloc, h);
    h->L = L;
    if (!L) {
        r->outcome = OUTCOME_SETUP;
        snprintf(r->message, sizeof r->message, "setup: lua_newstate failed");
        return;
    }
    lua_setwarnf(L, warn_keep, h);
    lua_warning(L, "@on", 0);
    luaL_openlibs(L);
    for (int i = 0; i < o->npreload; i++)
        if (require_module(L, o->preload[i], r)) goto close;
    if (luaL_loadfile(L, o->scenario) != LUA_OK) {
        snprintf(r->message, sizeof r->message, "setup: %s", lua_tostring(L, -1));
        r->outcome = OUTCOME_SETUP;
        goto close;
    }
    lua_pushstring(L, o->persist ? "persist" : "once");
    lua_setglobal(L, "OOM_MODE");
    /* The chunk is the scenario's set-up, not swept; it returns the
     * scenario, a function, which runs with the allocator armed. */
    if (lua_pcall(L, 0, 1, 0) != LUA_OK || !lua_isfunction(L, -1)) {
        snprintf(r->message, sizeof r->message, "setup: %s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "the chunk must return the scenario, a function");
        r->outcome = OUTCOME_SETUP;
        goto close;
    }
    h->armed = 1;
    int status = lua_pcall(L, 0, 0, 0);
    h->armed = o->strict_close; /* normally memory is back: lua_close runs every finalizer */
    r->count = h->count;
    r->failures = h->failures;
    int armed = h->armed;
    h->armed = 0;
    if (lua_getglobal(L, "OOM_NOTE") == LUA_TSTRING) snprintf(r->note, sizeof r->note, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    if (status == LUA_OK) {
        r->outcome = h->failures ? OUTCOME_HANDLED : OUTCOME_NORMAL;
    } else {
        const char *m = lua_tostring(L, -1);
        r->outcome = is_memory_message(m) ? OUTCOME_MEMORY : OUTCOME_WRONG_ERROR;
        snprintf(r->message, sizeof r->message, "%s", m ? m : "(an error object that is not a string)");
    }
    h->armed = armed;
close:
    if (o->pin) pin_xpio();
    lua_close(L);
    h->armed = 0;
    r->live = h->live;
    r->nframes = h->nframes;
    memcpy(r->frames, h->frames, sizeof r->frames);
    snprintf(r->warning, sizeof r->warning, "%s", h->warning);
}

/* The child's whole job for one N: baselines, the run, the checks. The
 * result goes to the parent through `out`. */
static void child_main(const options *o, long limit, int out) {
    result r;
    heap h;
    memset(&r, 0, sizeof r);
    alarm((unsigned)o->timeout);
    if (o->warm_up) {
        run_scenario(o, -1, &h, &r);
        memset(&r, 0, sizeof r);
    }
    process_state before, after;
    take_process_state(&before);
    run_scenario(o, limit, &h, &r);
    if (o->after_child) {
        extern char **environ;
        char *argv[] = { "/bin/true", NULL };
        pid_t pid;
        int status;
        if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) == 0)
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    }
    if (r.outcome != OUTCOME_SETUP) {
        /* Children handed to a reaper thread and descriptors a resolver
         * worker owns go away on their own: give them a while (-w). */
        for (int tries = 0; tries < o->settle_ms / 10; tries++) {
            take_process_state(&after);
            if (count_children() == 0 && same_process_state(&before, &after, NULL, 0)) break;
            usleep(10000);
        }
        r.children = count_children();
        r.leaked = !same_process_state(&before, &after, r.leak, sizeof r.leak);
    }
    (void)!write(out, &r, sizeof r);
    _exit(0);
}

/* Runs N in a child; a crash or a hang becomes the outcome. */
static void run_child(const options *o, long limit, result *r) {
    int fds[2];
    memset(r, 0, sizeof *r);
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(2);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(fds[0]);
        child_main(o, limit, fds[1]);
    }
    close(fds[1]);
    ssize_t got = read_full(fds[0], r, sizeof *r);
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (got != (ssize_t)sizeof *r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        r->outcome = sig == SIGALRM ? OUTCOME_HANG : OUTCOME_CRASH;
        snprintf(r->message, sizeof r->message, "%s (%s)", sig ? "killed by a signal" : "exited early",
                 sig ? strsignal(sig) : "no result");
    }
}

/* The signals scenario has children send SIGUSR1 and SIGUSR2; a memory
 * error can end it before the child has sent, and the signal arrives once
 * XPIO no longer watches it. A handler of the host's (another library's,
 * as far as XPIO is concerned) takes such a late one instead of the
 * default action, which would kill the run. */
static void late_signal(int sig) { (void)sig; }

int main(int argc, char **argv) {
    options o;
    parse_options(argc, argv, &o);
    struct sigaction late;
    memset(&late, 0, sizeof late);
    late.sa_handler = late_signal;
    sigemptyset(&late.sa_mask);
    sigaction(SIGUSR1, &late, NULL);
    sigaction(SIGUSR2, &late, NULL);
    result r;
    run_child(&o, -1, &r); /* the count, and a first check that all is well */
    long total = r.count;
    if (o.count_only || r.outcome == OUTCOME_SETUP || r.outcome == OUTCOME_CRASH) {
        report(&o, -1, &r);
        printf("%s: %ld allocation points\n", o.name, total);
        return judge(&r) ? 0 : 1;
    }
    tally t = { 0 };
    add_to_tally(&t, &o, -1, &r);
    long last = o.sweep_to < 0 || o.sweep_to > total ? total : o.sweep_to;
    if (o.points > 0) {
        o.stride = total / o.points > 1 ? total / o.points : 1;
        o.sweep_from = o.offset % o.stride;
    }
    for (long n = o.sweep_from; n <= last; n += o.stride) {
        run_child(&o, n, &r);
        add_to_tally(&t, &o, n, &r);
        /* Timing changes how often a scenario goes round its loops: a run
         * that went further than the count extends the sweep. */
        if (o.sweep_to < 0 && (r.outcome == OUTCOME_NORMAL || r.outcome == OUTCOME_HANDLED) && r.count > last)
            last = total = r.count;
    }
    print_summary(&o, total, &t);
    return t.crashes + t.leaks + t.errors ? 1 : 0;
}
