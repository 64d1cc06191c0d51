/*
 * The platform layer (xpio_platform.h): each Linux facility and its POSIX
 * fallback, side by side, chosen by XPIO_LINUX. The fallbacks use POSIX
 * calls alone (socket, fcntl, accept, pipe, poll, posix_spawn file
 * actions), so the portable build on Linux runs the code a BSD or macOS
 * build would.
 *
 * The price of the fallbacks: a descriptor and its close-on-exec flag are
 * two calls, so a fork or posix_spawn in another thread between them can
 * inherit it. XPIO starts no child from its own threads (the resolver's
 * and reaper's only call getaddrinfo and waitpid); a host program that
 * spawns from other threads while XPIO opens descriptors is the case that
 * can leak one into a child (docs/PORTING.md).
 */
#include "xpio_sys.h"
#include <dirent.h>
#ifdef __linux__
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#endif

#if defined(__linux__) && !defined(XPIO_PORTABLE)
#define XPIO_LINUX 1
#else
#define XPIO_LINUX 0
#endif

int xpio_platform_linux(void) { return XPIO_LINUX; }

/* Makes a new descriptor close-on-exec and (when asked) non-blocking; on
 * failure closes it and answers -1 with fcntl's errno. A new descriptor
 * has no other flag to keep, so each is one call, without reading first
 * (the accept-storm bench pays these calls per connection, twice). */
static int finish_descriptor(int fd, int nonblocking) {
    if (fd < 0) return fd;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) goto fail;
    if (nonblocking && fcntl(fd, F_SETFL, O_NONBLOCK) < 0) goto fail;
    return fd;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* A socket that never raises SIGPIPE where the system has the option. */
static int finish_socket(int fd) {
    fd = finish_descriptor(fd, 1);
#ifdef SO_NOSIGPIPE
    if (fd >= 0) {
        int on = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);
    }
#endif
    return fd;
}

int xpio_socket(int domain, int type, int protocol) {
#if XPIO_LINUX
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
#else
    return finish_socket(socket(domain, type, protocol));
#endif
}

#if !XPIO_LINUX
/* Both ends of a new pair through `finish` (which closes the end it fails
 * on); on failure the other end is closed too. */
static int finish_pair(int fds[2], int (*finish)(int)) {
    for (int i = 0; i < 2; i++) {
        if (finish(fds[i]) < 0) {
            int saved = errno;
            if (i == 0) close(fds[1]);
            else close(fds[0]);
            errno = saved;
            return -1;
        }
    }
    return 0;
}
static int finish_pipe_end(int fd) { return finish_descriptor(fd, 1); }
#endif

int xpio_socketpair(int domain, int type, int fds[2]) {
#if XPIO_LINUX
    return socketpair(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
#else
    if (socketpair(domain, type, 0, fds) != 0) return -1;
    return finish_pair(fds, finish_socket);
#endif
}

int xpio_accept(int fd) {
#if XPIO_LINUX
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
    return finish_socket(accept(fd, NULL, NULL));
#endif
}

int xpio_pipe(int fds[2]) {
#if XPIO_LINUX
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
#else
    if (pipe(fds) != 0) return -1;
    return finish_pair(fds, finish_pipe_end);
#endif
}

int xpio_wakeup_open(int fds[2]) {
#if XPIO_LINUX
    fds[0] = fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fds[0] < 0 ? -1 : 0;
#else
    return xpio_pipe(fds);
#endif
}

/* Eight bytes: an eventfd takes a count of 1; a pipe, any byte. */
void xpio_wakeup_signal(int write_fd) {
    uint64_t one = 1;
    (void)!write(write_fd, &one, sizeof one);
}

void xpio_wakeup_close(int fds[2]) {
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0 && fds[1] != fds[0]) close(fds[1]);
    fds[0] = fds[1] = -1;
}

ssize_t xpio_send(int fd, const void *buffer, size_t count) {
    return send(fd, buffer, count, MSG_DONTWAIT | xpio_send_flags());
}

int xpio_send_flags(void) {
#if XPIO_LINUX
    return MSG_NOSIGNAL;
#else
    return 0;
#endif
}

ssize_t xpio_recvmsg_cloexec(int fd, struct msghdr *message) {
#if XPIO_LINUX
    return recvmsg(fd, message, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
#else
    ssize_t n = recvmsg(fd, message, MSG_DONTWAIT);
    if (n < 0) return n;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(message); h; h = CMSG_NXTHDR(message, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
        int received = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *list = (int *)CMSG_DATA(h);
        for (int i = 0; i < received; i++) (void)fcntl(list[i], F_SETFD, FD_CLOEXEC);
    }
    return n;
#endif
}

#if !XPIO_LINUX && !defined(POSIX_SPAWN_CLOEXEC_DEFAULT)
/* The highest descriptor open: the largest name in /dev/fd (Linux, macOS,
 * FreeBSD with fdescfs), else the descriptor limit (capped: a limit of a
 * million would make every spawn a million fcntl calls). */
static int highest_open(void) {
    int highest = -1;
    DIR *directory = opendir("/dev/fd");
    if (directory) {
        struct dirent *entry;
        while ((entry = readdir(directory)) != NULL) {
            if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
            int fd = atoi(entry->d_name);
            if (fd > highest) highest = fd;
        }
        closedir(directory);
        if (highest > 2) return highest;   /* /dev/fd without fdescfs lists 0-2 alone */
    }
    long limit = sysconf(_SC_OPEN_MAX);
    if (limit <= 0 || limit > 65536) limit = 65536;
    return (int)limit - 1;
}
#endif

int xpio_spawn_close_rest(posix_spawn_file_actions_t *actions, short *flags, int from) {
#if XPIO_LINUX && defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    (void)flags;
    /* A target at the descriptor limit's last number leaves no number to
     * close from: glibc refuses one at or above the limit (EBADF). */
    long limit = sysconf(_SC_OPEN_MAX);
    if (limit > 0 && from >= limit) return 0;
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
#elif defined(POSIX_SPAWN_CLOEXEC_DEFAULT)
    (void)actions; (void)from;
    *flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
    return 0;
#else
    /* Descriptors with close-on-exec (every one XPIO opens) close at exec
     * by themselves; a close action is added for each of the others. */
    (void)flags;
    int highest = highest_open();
    /* A file action cannot name a descriptor at or above the descriptor
     * limit (EBADF): one the host opened before lowering its limit reaches
     * the child unless it is close-on-exec (docs/PORTING.md). */
    long limit = sysconf(_SC_OPEN_MAX);
    if (limit > 0 && highest >= limit) highest = (int)limit - 1;
    for (int fd = from; fd <= highest; fd++) {
        int fd_flags = fcntl(fd, F_GETFD);
        if (fd_flags < 0 || (fd_flags & FD_CLOEXEC)) continue;
        int code = posix_spawn_file_actions_addclose(actions, fd);
        if (code != 0) return code;
    }
    return 0;
#endif
}

int xpio_peer_credentials(int fd, int *pid, int *uid, int *gid) {
#if defined(SO_PEERCRED) && defined(__linux__)
    /* Linux's own answer, in both builds: glibc has no getpeereid. */
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = (int)credentials.pid;
    *uid = (int)credentials.uid;
    *gid = (int)credentials.gid;
    return 0;
#else
    uid_t user;
    gid_t group;
    if (getpeereid(fd, &user, &group) != 0) return -1;
    *pid = -1;
#if defined(LOCAL_PEERPID)
    pid_t peer;
    socklen_t length = sizeof peer;
    if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &peer, &length) == 0) *pid = (int)peer;
#endif
    *uid = (int)user;
    *gid = (int)group;
    return 0;
#endif
}

#if XPIO_LINUX
int xpio_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
int xpio_epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) { return epoll_ctl(epfd, op, fd, event); }
int xpio_epoll_wait(int epfd, struct epoll_event *events, int capacity, int milliseconds) {
    return epoll_wait(epfd, events, capacity, milliseconds);
}
int xpio_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
int xpio_timer_open(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); }
ssize_t xpio_sendfile(int output, int input, int64_t *offset, size_t count) {
    off_t position = (off_t)*offset;
    ssize_t sent = sendfile(output, input, &position, count);
    *offset = (int64_t)position;
    return sent;
}
ssize_t xpio_splice(int input, int output, size_t count) {
    return splice(input, NULL, output, NULL, count, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
}
int xpio_pipe_grow(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
int xpio_timer_arm(int fd, long seconds, long nanoseconds) {
    struct itimerspec value;
    memset(&value, 0, sizeof value);
    value.it_value.tv_sec = seconds;
    value.it_value.tv_nsec = nanoseconds;
    return timerfd_settime(fd, 0, &value, NULL);
}

/* pidfd_open(2) through syscall(2): the glibc wrapper is 2.36+. */
int xpio_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int xpio_pidfd_send_signal(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int xpio_signalfd_open(int signo) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The next delivery's number (and sender in *pid), 0 when none is there. */
int xpio_signalfd_read(int fd, int *pid) {
    struct signalfd_siginfo info;
    ssize_t n;
    while ((n = read(fd, &info, sizeof info)) < 0 && errno == EINTR) {}
    if (n < 0) return (errno == EAGAIN) ? 0 : -1;
    *pid = (int)info.ssi_pid;
    return (int)info.ssi_signo;
}
void xpio_signalfd_discard(int signo) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    struct timespec now = { 0, 0 };
    while (sigtimedwait(&set, NULL, &now) == signo) {}
}
#else
void xpio_signalfd_discard(int signo) { (void)signo; }
static int unsupported(void) {
    errno = ENOSYS;
    return -1;
}
int xpio_epoll_create(void) { return unsupported(); }
int xpio_epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) {
    (void)epfd; (void)op; (void)fd; (void)event;
    return unsupported();
}
int xpio_epoll_wait(int epfd, struct epoll_event *events, int capacity, int milliseconds) {
    (void)epfd; (void)events; (void)capacity; (void)milliseconds;
    return unsupported();
}
int xpio_eventfd(void) { return unsupported(); }
int xpio_timer_open(void) { return unsupported(); }
ssize_t xpio_sendfile(int output, int input, int64_t *offset, size_t count) {
    (void)output; (void)input; (void)offset; (void)count;
    return unsupported();
}
ssize_t xpio_splice(int input, int output, size_t count) {
    (void)input; (void)output; (void)count;
    return unsupported();
}
int xpio_pipe_grow(int fd, int size) {
    (void)fd; (void)size;
    return unsupported();
}
int xpio_timer_arm(int fd, long seconds, long nanoseconds) {
    (void)fd; (void)seconds; (void)nanoseconds;
    return unsupported();
}
int xpio_pidfd_open(pid_t pid) {
    (void)pid;
    return unsupported();
}
int xpio_pidfd_send_signal(int pidfd, int sig) {
    (void)pidfd; (void)sig;
    return unsupported();
}
int xpio_signalfd_open(int signo) {
    (void)signo;
    return unsupported();
}
int xpio_signalfd_read(int fd, int *pid) {
    (void)fd; (void)pid;
    return unsupported();
}
#endif
