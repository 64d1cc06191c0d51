#include "xpio_sys.h"
#include <pthread.h>
#include <stdlib.h>

int xpio_spawn_chdir(posix_spawn_file_actions_t *actions, const char *path) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    return posix_spawn_file_actions_addchdir_np(actions, path);
#else
    (void)actions; (void)path;
    return ENOSYS;
#endif
}

static void *reaper(void *arg) {
    pid_t pid = (pid_t)(intptr_t)arg;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return NULL;
}

int xpio_start_thread(void *(*body)(void *), void *argument, size_t stack) {
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, stack);
    /* The thread must not take signals meant for the Lua thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&thread, &attr, body, argument);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return err;
}

/* Children whose reaper thread could not start (pthread_create's EAGAIN:
 * RLIMIT_NPROC, or no memory): reaped without waiting at the next spawn or
 * process close (xpio_reap_pending), so that none stays a zombie for good.
 * Only the Lua thread touches the list. */
static pid_t *unreaped;
static size_t unreaped_count, unreaped_capacity;

int xpio_reap_detached(pid_t pid) {
    int err = xpio_start_thread(reaper, (void *)(intptr_t)pid, 64 * 1024);
    if (err == 0 || waitpid(pid, NULL, WNOHANG) == pid) return 0;
    if (unreaped_count == unreaped_capacity) {
        size_t capacity = unreaped_capacity ? 2 * unreaped_capacity : 16;
        pid_t *grown = realloc(unreaped, capacity * sizeof *grown);
        if (!grown) return err;
        unreaped = grown;
        unreaped_capacity = capacity;
    }
    unreaped[unreaped_count++] = pid;
    return 0;
}

void xpio_reap_pending(void) {
    size_t kept = 0;
    for (size_t i = 0; i < unreaped_count; i++) {
        if (waitpid(unreaped[i], NULL, WNOHANG) == 0) unreaped[kept++] = unreaped[i];   /* still running */
    }
    unreaped_count = kept;
}

static int sigchld_pipe[2] = { -1, -1 };
static struct sigaction previous_sigchld;

static void on_sigchld(int sig, siginfo_t *info, void *context) {
    int saved = errno;
    if (sigchld_pipe[1] >= 0) (void)!write(sigchld_pipe[1], "", 1);
    errno = saved;
    if (previous_sigchld.sa_flags & SA_SIGINFO) {
        if (previous_sigchld.sa_sigaction) previous_sigchld.sa_sigaction(sig, info, context);
    } else if (previous_sigchld.sa_handler != SIG_DFL && previous_sigchld.sa_handler != SIG_IGN) {
        previous_sigchld.sa_handler(sig);
    }
}

/* Deadlines of `stop`s where there is no timerfd (the portable build):
 * one thread writes a byte to the SIGCHLD pipe once each has passed, so a
 * task waiting there wakes and try_stop sends SIGKILL. A byte in that pipe
 * only ever means "check your child again", so an extra one is harmless;
 * none is written before its deadline (on the monotonic clock). The thread
 * holds no descriptor: it sleeps on a condition variable, at most a second
 * at a time, since pthread_cond_timedwait counts on the realtime clock,
 * which can be set back (pthread_condattr_setclock is not on macOS). */
#define XPIO_DEADLINES 1024
static pthread_mutex_t deadline_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t deadline_added = PTHREAD_COND_INITIALIZER;
static double deadlines[XPIO_DEADLINES];
static int deadline_count;
static int waker_started;

static double clock_seconds(clockid_t clock) {
    struct timespec now;
    clock_gettime(clock, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void *waker(void *unused) {
    (void)unused;
    pthread_mutex_lock(&deadline_lock);
    for (;;) {
        double now = clock_seconds(CLOCK_MONOTONIC), next = -1;
        int passed = 0;
        for (int i = 0; i < deadline_count;) {
            if (deadlines[i] <= now) {
                deadlines[i] = deadlines[--deadline_count];
                passed = 1;
            } else {
                if (next < 0 || deadlines[i] < next) next = deadlines[i];
                i++;
            }
        }
        if (passed && sigchld_pipe[1] >= 0) (void)!write(sigchld_pipe[1], "", 1);
        if (next < 0) {
            pthread_cond_wait(&deadline_added, &deadline_lock);
            continue;
        }
        double wait = next - now;
        if (wait > 1) wait = 1;
        double until = clock_seconds(CLOCK_REALTIME) + wait;
        struct timespec at = { (time_t)until, (long)((until - (double)(time_t)until) * 1e9) };
        pthread_cond_timedwait(&deadline_added, &deadline_lock, &at);
    }
    return NULL;
}

int xpio_sigchld_wake_at(double deadline) {
    pthread_mutex_lock(&deadline_lock);
    int err = 0;
    if (!waker_started) {
        err = xpio_start_thread(waker, NULL, 64 * 1024);
        if (err == 0) waker_started = 1;
    }
    if (err == 0 && deadline_count == XPIO_DEADLINES) err = ENOMEM;
    if (err == 0) {
        deadlines[deadline_count++] = deadline;
        pthread_cond_signal(&deadline_added);
    }
    pthread_mutex_unlock(&deadline_lock);
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}

void xpio_sigchld_wake_cancel(double deadline) {
    pthread_mutex_lock(&deadline_lock);
    for (int i = 0; i < deadline_count; i++) {
        if (deadlines[i] == deadline) {
            deadlines[i] = deadlines[--deadline_count];
            break;
        }
    }
    pthread_mutex_unlock(&deadline_lock);
}

/* The last Lua state using XPIO has closed: the previous SIGCHLD handler
 * comes back and the write end closes (the caller closes the read end). */
void xpio_sigchld_release(void) {
    if (sigchld_pipe[0] < 0) return;
    sigaction(SIGCHLD, &previous_sigchld, NULL);
    pthread_mutex_lock(&deadline_lock);
    close(sigchld_pipe[1]);
    sigchld_pipe[0] = sigchld_pipe[1] = -1;
    pthread_mutex_unlock(&deadline_lock);
}

/* A byte in the SIGCHLD pipe, as a child's exit writes: every task waiting
 * there wakes and checks its own child (a closed process's waiters learn
 * that it is closed). */
void xpio_sigchld_poke(void) {
    if (sigchld_pipe[1] >= 0) (void)!write(sigchld_pipe[1], "", 1);
}

/* With SIGCHLD ignored (SIG_IGN, which exec passes on: a shell's
 * `trap '' CHLD`), the kernel reaps children itself and waitpid answers
 * ECHILD: no status. The default disposition ignores the signal as well
 * but keeps the statuses; a handler someone installed is left alone. */
void xpio_sigchld_keep_statuses(void) {
    struct sigaction current;
    if (sigaction(SIGCHLD, NULL, &current) != 0 || current.sa_handler != SIG_IGN) return;
    current.sa_handler = SIG_DFL;
    current.sa_flags &= ~SA_NOCLDWAIT;
    sigaction(SIGCHLD, &current, NULL);
}

int xpio_sigchld_pipe(void) {
    if (sigchld_pipe[0] >= 0) return sigchld_pipe[0];
    if (xpio_pipe(sigchld_pipe) != 0) return -1;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigchld;
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGCHLD, &action, &previous_sigchld) != 0) {
        close(sigchld_pipe[0]);
        close(sigchld_pipe[1]);
        sigchld_pipe[0] = sigchld_pipe[1] = -1;
        return -1;
    }
    return sigchld_pipe[0];
}

/* sendmsg with the descriptors as SCM_RIGHTS; at most 253 (SCM_MAX_FD). */
ssize_t xpio_send_fds(int fd, const void *data, size_t length, const int *fds, int count) {
    char dummy = 0;
    struct iovec iov = { (void *)(length ? data : &dummy), length ? length : 1 };
    union { char buffer[CMSG_SPACE(sizeof(int) * 253)]; struct cmsghdr align; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    if (count > 0) {
        if (count > 253) {
            errno = EINVAL;
            return -1;
        }
        memset(&control, 0, sizeof control);
        message.msg_control = control.buffer;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)count);
    }
    return sendmsg(fd, &message, MSG_DONTWAIT | xpio_send_flags());
}

/* recvmsg taking SCM_RIGHTS descriptors (close-on-exec as they arrive),
 * at most `max`; *count gets how many. Descriptors beyond `max` are closed
 * at once so none leaks (*truncated 1); when the kernel could not give
 * them all (MSG_CTRUNC: this process had no free descriptor for some, and
 * discarded them), *truncated is 2. */
ssize_t xpio_recv_fds(int fd, void *data, size_t length, int *fds, int max, int *count, int *truncated) {
    struct iovec iov = { data, length };
    union { char buffer[CMSG_SPACE(sizeof(int) * 253)]; struct cmsghdr align; } control;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.buffer;
    message.msg_controllen = sizeof control.buffer;
    *count = 0;
    *truncated = 0;
    ssize_t n = xpio_recvmsg_cloexec(fd, &message);
    if (n < 0) return n;
    if (message.msg_flags & MSG_CTRUNC) *truncated = 2;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&message); h; h = CMSG_NXTHDR(&message, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
        int received = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *list = (int *)CMSG_DATA(h);
        for (int i = 0; i < received; i++) {
            if (*count < max) fds[(*count)++] = list[i];
            else {
                close(list[i]);
                if (!*truncated) *truncated = 1;
            }
        }
    }
    return n;
}
