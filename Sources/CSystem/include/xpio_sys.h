/*
 * The system headers the Swift runtime needs, for both build modes (Glibc's
 * Swift overlay does not exist in Embedded Swift), and inline helpers for
 * what Swift cannot import: errno, macros, variadic functions.
 */
#ifndef XPIO_SYS_H
#define XPIO_SYS_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "xpio_platform.h"

static inline int xpio_errno(void) { return errno; }
static inline void xpio_seterrno(int e) { errno = e; }

static inline int xpio_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
static inline int xpio_open(const char *path, int flags) { return open(path, flags); }
static inline int xpio_open_mode(const char *path, int flags, mode_t mode) { return open(path, flags, mode); }

/* Socket calls: with _GNU_SOURCE glibc declares their address parameters as
 * transparent unions, which Swift cannot pass. */
static inline int xpio_bind(int fd, const struct sockaddr *a, socklen_t n) { return bind(fd, a, n); }
static inline int xpio_connect(int fd, const struct sockaddr *a, socklen_t n) { return connect(fd, a, n); }
static inline int xpio_getsockname(int fd, struct sockaddr *a, socklen_t *n) { return getsockname(fd, a, n); }
static inline int xpio_getpeername(int fd, struct sockaddr *a, socklen_t *n) { return getpeername(fd, a, n); }

/* Wait-status macros. */
static inline int xpio_wexitstatus(int s) { return WEXITSTATUS(s); }
static inline int xpio_wifsignaled(int s) { return WIFSIGNALED(s); }
static inline int xpio_wtermsig(int s) { return WTERMSIG(s); }

/* Spawn helper: the file action that changes directory. */
int xpio_spawn_chdir(posix_spawn_file_actions_t *actions, const char *path);

/* signal(SIGPIPE, SIG_IGN): SIG_IGN is a cast Swift cannot import. */
static inline void xpio_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

/* Lets the release build count references without atomics once `object`,
 * a fresh Swift object, shows the object header refcount.c knows
 * (Sources/CSystem/refcount.c); elsewhere nothing. */
void xpio_refcount_check(void *object);

/* The fallback where pidfds are unavailable: a SIGCHLD handler (installed
 * once, chaining to any handler already there) writes a byte to a
 * non-blocking, close-on-exec pipe. Returns the pipe's read end, or -1. */
int xpio_sigchld_pipe(void);
/* An ignored SIGCHLD (inherited across exec) made the default: with it
 * ignored, the kernel reaps children itself and their statuses are lost. */
void xpio_sigchld_keep_statuses(void);
/* Wakes every task waiting on the SIGCHLD pipe to check its child again. */
void xpio_sigchld_poke(void);
void xpio_sigchld_release(void);
/* A byte in the SIGCHLD pipe once the monotonic clock reaches `deadline`
 * (seconds): a stop's grace period without timerfd. 0, or -1 with errno. */
int xpio_sigchld_wake_at(double deadline);
/* Takes back one such deadline not yet passed (its stop ended first), so
 * no stray byte later wakes every waiter on the pipe. */
void xpio_sigchld_wake_cancel(double deadline);

/* Every signal, glibc's internal ones (32, 33) included, which sigfillset
 * leaves out: posix_spawn would otherwise set those to SIG_IGN in the child,
 * and an ignored disposition survives exec. */
static inline void xpio_sigset_everything(sigset_t *set) { memset(set, 0xff, sizeof *set); }

/* Starts a detached thread that blocks every signal (they stay the Lua
 * thread's); 0 or an errno. */
int xpio_start_thread(void *(*body)(void *), void *argument, size_t stack);

/* Reaps `pid` on a small detached thread, so a process object collected
 * while its child runs never leaves a zombie. Returns 0 or an errno. */
int xpio_reap_detached(pid_t pid);
/* Reaps, without waiting, the children whose reaper thread could not start. */
void xpio_reap_pending(void);

/* Descriptor passing over Unix sockets (shim.c). */
ssize_t xpio_send_fds(int fd, const void *data, size_t length, const int *fds, int count);
ssize_t xpio_recv_fds(int fd, void *data, size_t length, int *fds, int max, int *count, int *truncated);

/* Signals as events (signals.c). */
int xpio_signal_watch(int signo, int use_signalfd);
int xpio_signal_next(int signo, int fd, int *pid);
void xpio_signal_unwatch(int signo);
/* The highest signal number there is (SIGRTMAX: a function call in glibc). */
int xpio_signal_highest(void);

/* A delimiter in a buffer: one byte (a line's "\n") by memchr, which
 * needs no setup, longer ones by memmem. */
static inline void *xpio_memmem(const void *haystack, size_t n, const void *needle, size_t m) {
    if (m == 1) return memchr(haystack, *(const unsigned char *)needle, n);
    return memmem(haystack, n, needle, m);
}

/* Name resolution on worker threads (resolver.c). */
struct xpio_resolution;
struct xpio_resolution *xpio_resolve_start(const char *host, size_t host_length, const char *service,
                                           size_t service_length, int family, int passive);
int xpio_resolve_descriptor(const struct xpio_resolution *r);
int xpio_resolve_done(struct xpio_resolution *r);
int xpio_resolve_error(const struct xpio_resolution *r);
int xpio_resolve_system_error(const struct xpio_resolution *r);
const struct addrinfo *xpio_resolve_result(const struct xpio_resolution *r);
void xpio_resolve_release(struct xpio_resolution *r);
void xpio_set_resolver_delay(int milliseconds);

/* sendto/recvfrom: transparent unions again. */
static inline ssize_t xpio_sendto(int fd, const void *b, size_t n, int flags, const struct sockaddr *a, socklen_t l) {
    return sendto(fd, b, n, flags, a, l);
}
static inline ssize_t xpio_recvfrom(int fd, void *b, size_t n, int flags, struct sockaddr *a, socklen_t *l) {
    return recvfrom(fd, b, n, flags, a, l);
}

#endif
