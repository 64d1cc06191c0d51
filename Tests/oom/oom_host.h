/*
 * What oom_host.c (the runs) and oom_check.c (process state, options,
 * reports) share.
 */
#ifndef OOM_HOST_H
#define OOM_HOST_H

#include <lua.h>
#include <lauxlib.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#define MAX_FRAMES 256

/* The allocator's state: one per run. */
typedef struct heap {
    size_t live;        /* bytes allocated and not freed */
    long count;         /* growing requests that succeeded while armed */
    long limit;         /* fail once count reaches it; -1: never */
    long failures;      /* requests failed */
    int armed;          /* counting: the scenario is running */
    int persist;        /* fail every request from limit on, not just one */
    int trace;          /* -T */
    lua_State *L;
    int once_retry;     /* once mode: the next request may be Lua's retry */
    void *failed_block;
    size_t failed_osize, failed_nsize;
    char warning[256];  /* warnings Lua issued (errors in __gc) */
    int stacks;         /* -S: record the xpio.so frames of failing requests */
    int nframes;
    unsigned long frames[MAX_FRAMES]; /* offsets in xpio.so, distinct */
} heap;

/* How a run ended. */
enum {
    OUTCOME_NORMAL,      /* the scenario returned; nothing failed */
    OUTCOME_HANDLED,     /* it returned although an allocation failed */
    OUTCOME_MEMORY,      /* it raised "not enough memory" */
    OUTCOME_WRONG_ERROR, /* it raised something else */
    OUTCOME_CRASH,       /* the child died (a signal, or no result) */
    OUTCOME_HANG,        /* the child's alarm went off */
    OUTCOME_SETUP        /* the state or a module could not be made */
};

/* What a child reports to the parent (a fixed-size record on a pipe). */
typedef struct result {
    int outcome;
    long count, failures;
    size_t live;
    int children;        /* child processes left after the wait */
    int leaked;          /* descriptors or signal state differ */
    char message[512];   /* the error, or what went wrong */
    char leak[512];      /* the differences, for the report */
    char warning[256];
    char note[128];      /* OOM_NOTE: an expected loss the scenario saw */
    int nframes;
    unsigned long frames[MAX_FRAMES];
} result;

#define MAX_FDS 1024

/* What must be the same before the state exists and after it is closed. */
typedef struct process_state {
    int nfds;
    int fds[MAX_FDS];
    sigset_t mask;
    void *handlers[NSIG]; /* sa_handler of each signal */
} process_state;

typedef struct options {
    const char *scenario, *name;
    const char *preload[16];
    int npreload;
    int count_only, persist, warm_up, pin, trace, strict_close, stacks, after_child, quiet;
    long sweep_from, sweep_to, stride, points, offset;
    int timeout, settle_ms;
} options;

typedef struct tally {
    long swept, crashes, leaks, errors;
    long normal, handled, memory;
    long min_count, max_count;
    long notes, warnings;
    char note[128];      /* the first note */
    int nframes;
    unsigned long frames[4 * MAX_FRAMES];
} tally;

/* oom_check.c */
/* Adds `frame` to `frames` (of `*n`, at most `max`) unless it is there. */
void add_frame(unsigned long *frames, int *n, int max, unsigned long frame);
void take_process_state(process_state *s);
/* 1 when equal; otherwise 0, with the differences in `why` (if given). */
int same_process_state(const process_state *a, const process_state *b, char *why, size_t size);
int count_children(void);
ssize_t read_full(int fd, void *buffer, size_t size);
void parse_options(int argc, char **argv, options *o);
/* 1 when the run passed every check. */
int judge(const result *r);
void report(const options *o, long n, const result *r);
void add_to_tally(tally *t, const options *o, long n, const result *r);
void print_summary(const options *o, long total, const tally *t);

#endif
