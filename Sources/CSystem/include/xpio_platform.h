/*
 * The platform layer: every facility XPIO takes from Linux that POSIX does
 * not have, each with its POSIX fallback beside it (platform.c). Which one
 * is compiled is decided there alone, by XPIO_LINUX: Linux, unless the build
 * asks for the portable path (XPIO_PORTABLE=1, `make portable`), so that the
 * fallbacks are the code that runs in that build. docs/PORTING.md lists them.
 *
 * Nothing that differs is inline: the Swift side calls these functions and asks
 * `xpio_platform_linux()` which path was compiled, so C and Swift can never
 * disagree about it.
 */
#ifndef XPIO_PLATFORM_H
#define XPIO_PLATFORM_H

#define _GNU_SOURCE 1   /* as xpio_sys.h: whichever is read first */

#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#ifdef __linux__
#include <sys/epoll.h>
#else
/* The selector keeps readiness in epoll's format on both backends; where
 * there is no epoll, the same layout and bits (poll's values, which Linux
 * shares). */
struct epoll_event { uint32_t events; uint64_t data; };
enum EPOLL_EVENTS { EPOLLIN = 0x001, EPOLLPRI = 0x002, EPOLLOUT = 0x004, EPOLLERR = 0x008, EPOLLHUP = 0x010,
                    EPOLLRDHUP = 0x2000 };   /* named as glibc's, so Swift sees the same type */
#define EPOLL_CTL_ADD 1
#define EPOLL_CTL_DEL 2
#define EPOLL_CTL_MOD 3
#endif

/* epoll_event is packed on x86-64; build and read it in C. */
static inline void xpio_epoll_set(struct epoll_event *e, uint32_t events, uint64_t data) {
    e->events = events;
#ifdef __linux__
    e->data.u64 = data;
#else
    e->data = data;
#endif
}
static inline uint32_t xpio_epoll_events(const struct epoll_event *e) { return e->events; }
#ifdef __linux__
static inline uint64_t xpio_epoll_data(const struct epoll_event *e) { return e->data.u64; }
#else
static inline uint64_t xpio_epoll_data(const struct epoll_event *e) { return e->data; }
#endif

/* 1 when the Linux facilities were compiled, 0 for the POSIX fallbacks. */
int xpio_platform_linux(void);

/* Non-blocking, close-on-exec descriptors (Linux: the flags at creation;
 * POSIX: fcntl right after, and SO_NOSIGPIPE where the system has it). */
int xpio_socket(int domain, int type, int protocol);
int xpio_socketpair(int domain, int type, int fds[2]);
int xpio_accept(int fd);
int xpio_pipe(int fds[2]);

/* A wake-up: a descriptor to wait on (fds[0]) that becomes readable once
 * xpio_wakeup_signal writes to fds[1]. Linux: one eventfd (fds[0] == fds[1]);
 * POSIX: a pipe. */
int xpio_wakeup_open(int fds[2]);
void xpio_wakeup_signal(int write_fd);
void xpio_wakeup_close(int fds[2]);

/* send (never blocking) without SIGPIPE: Linux MSG_NOSIGNAL; POSIX relies on
 * SO_NOSIGPIPE set at creation or on SIGPIPE being ignored. */
ssize_t xpio_send(int fd, const void *buffer, size_t count);
/* The flags for sendmsg: MSG_NOSIGNAL on Linux, none elsewhere. */
int xpio_send_flags(void);
/* recvmsg, the descriptors taken close-on-exec (MSG_CMSG_CLOEXEC, or fcntl
 * on each right after). */
ssize_t xpio_recvmsg_cloexec(int fd, struct msghdr *message);

/* Every descriptor from `from` up is closed in the child of a posix_spawn:
 * Linux the file action closefrom; macOS POSIX_SPAWN_CLOEXEC_DEFAULT (in
 * *flags); elsewhere a close action for each open descriptor without
 * close-on-exec, found by a loop up to the highest one open. */
int xpio_spawn_close_rest(posix_spawn_file_actions_t *actions, short *flags, int from);

/* The peer's credentials on a Unix socket: SO_PEERCRED, LOCAL_PEERCRED or
 * getpeereid (*pid is -1 where the system does not tell it). */
int xpio_peer_credentials(int fd, int *pid, int *uid, int *gid);

/* Linux only: these fail with ENOSYS in the portable build. */
int xpio_epoll_create(void);
int xpio_epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
int xpio_epoll_wait(int epfd, struct epoll_event *events, int capacity, int milliseconds);
int xpio_eventfd(void);
/* sendfile(2): at most `count` bytes of `input` from *offset (advanced) to
 * `output`; the portable build's callers read and write instead. */
ssize_t xpio_sendfile(int output, int input, int64_t *offset, size_t count);
/* splice(2) with SPLICE_F_NONBLOCK | SPLICE_F_MOVE; one end is a pipe. */
ssize_t xpio_splice(int input, int output, size_t count);
/* F_SETPIPE_SZ: a pipe's capacity. */
int xpio_pipe_grow(int fd, int size);
int xpio_timer_open(void);
int xpio_timer_arm(int fd, long seconds, long nanoseconds);
int xpio_pidfd_open(pid_t pid);
int xpio_pidfd_send_signal(int pidfd, int sig);
int xpio_signalfd_open(int signo);
int xpio_signalfd_read(int fd, int *pid);
/* Discards the instances of `signo` still pending (the signalfd's signal is
 * blocked, so they wait in the mask); nothing in the portable build. */
void xpio_signalfd_discard(int signo);

#endif
