/*
 * The checks of oom_host around each run (descriptors, signal state,
 * children) and its options and reports.
 */
#include "oom_host.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------- process state */

static int compare_ints(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* The open descriptors, from /proc/self/fd, without the listing's own. */
static void list_fds(process_state *s) {
    s->nfds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) && s->nfds < MAX_FDS) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd != own) s->fds[s->nfds++] = fd;
    }
    closedir(d);
    qsort(s->fds, (size_t)s->nfds, sizeof s->fds[0], compare_ints);
}

void take_process_state(process_state *s) {
    list_fds(s);
    sigprocmask(SIG_BLOCK, NULL, &s->mask);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction a;
        s->handlers[sig] = sigaction(sig, NULL, &a) == 0 ? (void *)a.sa_handler : NULL;
    }
}

static void append(char *why, size_t size, const char *format, int n) {
    if (!why) return;
    size_t used = strlen(why);
    if (used + 1 < size) snprintf(why + used, size - used, format, n);
}

/* Describes descriptor `fd` ("7 socket:[1234]") into `why`. */
static void describe_fd(char *why, size_t size, const char *what, int fd) {
    char path[64], target[128];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    if (!why) return;
    size_t used = strlen(why);
    if (used + 1 < size) snprintf(why + used, size - used, "%s fd %d (%s); ", what, fd, target);
}

int same_process_state(const process_state *a, const process_state *b, char *why, size_t size) {
    int same = 1;
    if (why && size) why[0] = 0;
    for (int i = 0, j = 0; i < a->nfds || j < b->nfds;) {
        if (j >= b->nfds || (i < a->nfds && a->fds[i] < b->fds[j])) {
            describe_fd(why, size, "closed", a->fds[i++]);
            same = 0;
        } else if (i >= a->nfds || b->fds[j] < a->fds[i]) {
            describe_fd(why, size, "leaked", b->fds[j++]);
            same = 0;
        } else {
            i++, j++;
        }
    }
    for (int sig = 1; sig < NSIG; sig++) {
        /* XPIO ignores SIGPIPE at load, process-wide, by design. */
        if (sig == SIGPIPE) continue;
        if (sigismember(&a->mask, sig) != sigismember(&b->mask, sig)) {
            append(why, size, "signal %d: mask changed; ", sig);
            same = 0;
        }
        if (a->handlers[sig] != b->handlers[sig]) {
            append(why, size, "signal %d: handler changed; ", sig);
            same = 0;
        }
    }
    return same;
}

/* Children of every thread of this process, zombies included. */
int count_children(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int pid;
        while (fscanf(f, "%d", &pid) == 1) n++;
        fclose(f);
    }
    closedir(d);
    return n;
}

ssize_t read_full(int fd, void *buffer, size_t size) {
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, (char *)buffer + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* ------------------------------------------------------------- options */

static void usage(void) {
    fprintf(stderr, "usage: oom_host [-c] [-s from:to:stride] [-n points] [-o offset] [-m persist|once] [-p module]... [-l name] [-W] [-P] [-K] [-S] [-T] [-X] [-t s] [-w ms] [-q] scenario.lua\n");
    exit(2);
}

void parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->persist = 1;
    o->sweep_to = -1;
    o->stride = 1;
    o->timeout = 20;
    o->settle_ms = 2000;
    int opt, no_preload = 0;
    while ((opt = getopt(argc, argv, "cs:n:o:m:p:l:WPKSTXt:w:q")) != -1) {
        switch (opt) {
        case 'c': o->count_only = 1; break;
        case 's':
            if (sscanf(optarg, "%ld:%ld:%ld", &o->sweep_from, &o->sweep_to, &o->stride) != 3 || o->stride < 1) usage();
            break;
        case 'm':
            if (strcmp(optarg, "persist") && strcmp(optarg, "once")) usage();
            o->persist = strcmp(optarg, "persist") == 0;
            break;
        case 'p':
            if (strcmp(optarg, "-") == 0) no_preload = 1;
            else if (o->npreload < 16) o->preload[o->npreload++] = optarg;
            break;
        case 'n': o->points = atol(optarg); break;
        case 'o': o->offset = atol(optarg); break;
        case 'l': o->name = optarg; break;
        case 'W': o->warm_up = 1; break;
        case 'P': o->pin = 1; break;
        case 'T': o->trace = 1; break;
        case 'K': o->strict_close = 1; break;
        case 'S': o->stacks = 1; break;
        case 'X': o->after_child = 1; break;
        case 't': o->timeout = atoi(optarg); break;
        case 'w': o->settle_ms = atoi(optarg); break;
        case 'q': o->quiet = 1; break;
        default: usage();
        }
    }
    if (optind != argc - 1) usage();
    o->scenario = argv[optind];
    if (!no_preload && o->npreload == 0) o->preload[o->npreload++] = "xpio";
    /* The name: -l, or the file's base name without ".lua". */
    if (o->name) return;
    static char name[128];
    const char *base = strrchr(o->scenario, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : o->scenario);
    char *dot = strstr(name, ".lua");
    if (dot) *dot = 0;
    o->name = name;
}

/* ------------------------------------------------------------- reports */

static const char *const outcome_names[] = {
    "normal", "handled", "memory error", "WRONG ERROR", "CRASH", "HANG", "SETUP FAILED"
};

int judge(const result *r) {
    return r->outcome <= 2 && !r->leaked && r->children == 0 && r->live == 0;
}

/* At most this many failures are printed per sweep; the summary counts all. */
#define MAX_REPORTS 12

void report(const options *o, long n, const result *r) {
    static int reported;
    int ok = judge(r);
    if (ok && o->quiet) return;
    if (!ok && ++reported > MAX_REPORTS) {
        if (reported == MAX_REPORTS + 1) printf("%s: more failures, not printed\n", o->name);
        return;
    }
    printf("%s N=%ld%s: %s", o->name, n, o->persist ? "" : " (once)", outcome_names[r->outcome]);
    if (r->outcome <= 2) printf(", %ld allocations, %ld failed", r->count, r->failures);
    if (r->message[0] && r->outcome != 2) printf(": %s", r->message);
    if (r->leaked) printf("; LEAK: %s", r->leak);
    if (r->children) printf("; %d CHILDREN LEFT", r->children);
    if (r->live) printf("; %zu BYTES LEFT in the allocator", r->live);
    if (!ok && r->warning[0]) printf("; Lua warned: %s", r->warning);
    if (r->note[0] && !o->quiet) printf("; note: %s", r->note);
    printf("\n");
}

void add_frame(unsigned long *frames, int *n, int max, unsigned long frame) {
    for (int i = 0; i < *n; i++)
        if (frames[i] == frame) return;
    if (*n < max) frames[(*n)++] = frame;
}

void add_to_tally(tally *t, const options *o, long n, const result *r) {
    report(o, n, r);
    for (int i = 0; i < r->nframes && i < MAX_FRAMES; i++)
        add_frame(t->frames, &t->nframes, 4 * MAX_FRAMES, r->frames[i]);
    if (n >= 0) t->swept++;
    if (r->outcome == OUTCOME_CRASH || r->outcome == OUTCOME_HANG) t->crashes++;
    else if (r->outcome == OUTCOME_WRONG_ERROR || r->outcome == OUTCOME_SETUP) t->errors++;
    if (r->leaked || r->children || r->live) t->leaks++;
    if (r->outcome == OUTCOME_NORMAL) t->normal++;
    if (r->outcome == OUTCOME_HANDLED) t->handled++;
    if (r->outcome == OUTCOME_MEMORY) t->memory++;
    if (r->warning[0]) t->warnings++;
    if (r->note[0]) {
        if (!t->notes++) snprintf(t->note, sizeof t->note, "%s", r->note);
    }
    if (r->outcome <= 2) {
        if (!t->min_count || r->count < t->min_count) t->min_count = r->count;
        if (r->count > t->max_count) t->max_count = r->count;
    }
}

void print_summary(const options *o, long total, const tally *t) {
    char stride[64] = "";
    if (o->stride > 1) snprintf(stride, sizeof stride, " (stride %ld from %ld)", o->stride, o->sweep_from);
    printf("%s%s: %ld allocation points, %ld swept%s, %ld crashes, %ld leaks, %ld errors"
           " (ends: %ld memory error, %ld handled, %ld normal)\n",
           o->name, o->persist ? "" : " (once)", total, t->swept, stride, t->crashes, t->leaks, t->errors,
           t->memory, t->handled, t->normal);
    if (o->stacks) {
        printf("%s%s: xpio frames:", o->name, o->persist ? "" : " (once)");
        for (int i = 0; i < t->nframes; i++) printf(" %#lx", t->frames[i]);
        printf("\n");
    }
    if (t->warnings)
        printf("%s%s: %ld runs had Lua warnings (an error in a __gc metamethod)\n", o->name, o->persist ? "" : " (once)", t->warnings);
    if (t->notes)
        printf("%s%s: %ld runs noted an expected loss, e.g. %s\n", o->name, o->persist ? "" : " (once)", t->notes, t->note);
}
