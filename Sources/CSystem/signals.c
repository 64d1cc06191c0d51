/*
 * Signals as events (xpio.signal). Two ways to turn a signal into a
 * readable descriptor:
 *
 *   signalfd (the epoll backend): the signal is blocked in the calling
 *   thread and read from a signalfd; the disposition is left alone, so a
 *   handler the program installed is neither replaced nor run while XPIO
 *   watches the signal.
 *
 *   a self-pipe (the poll backend, and the portable build: systems without
 *   signalfd): a handler
 *   writes one record per delivery to a pipe; the previous disposition is
 *   kept and put back. A standard signal writes no second record while
 *   one is unread, so it coalesces as the kernel's pending set (and a
 *   signalfd) makes it; real-time signals queue, one record each.
 *
 * Closing the watch discards instances still pending, then puts back the
 * mask (or the disposition) as it was. Other threads of the process must
 * block a watched signal too (XPIO's own threads block every signal).
 */
#include "xpio_sys.h"

#define XPIO_SIGNALS 65

struct watch {
    int active;
    int uses_signalfd;
    int was_blocked;         /* signalfd: the signal was blocked before */
    int write_fd;            /* self-pipe: the handler writes here */
    int coalesces;           /* self-pipe: a standard signal, not a real-time one */
    volatile sig_atomic_t unread; /* self-pipe: a record is in the pipe, not yet read */
    struct sigaction previous;
};

static struct watch watches[XPIO_SIGNALS];

struct record {
    int32_t signo;
    int32_t pid;
};

static void on_signal(int signo, siginfo_t *info, void *context) {
    (void)context;
    int saved = errno;
    struct record record = { signo, info ? info->si_pid : 0 };
    if (signo > 0 && signo < XPIO_SIGNALS && watches[signo].write_fd >= 0) {
        struct watch *w = &watches[signo];
        if (w->coalesces && w->unread) {
            errno = saved;
            return;
        }
        w->unread = 1;
        (void)!write(w->write_fd, &record, sizeof record);
    }
    errno = saved;
}

/* Starts watching `signo`; returns the descriptor to read deliveries from
 * (non-blocking, close-on-exec; the caller owns it), or -1 with errno. */
int xpio_signal_watch(int signo, int use_signalfd) {
    if (signo <= 0 || signo >= XPIO_SIGNALS || signo == SIGKILL || signo == SIGSTOP) {
        errno = EINVAL;
        return -1;
    }
    struct watch *w = &watches[signo];
    if (w->active) {
        errno = EBUSY;
        return -1;
    }
    if (use_signalfd) {
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, signo);
        int fd = xpio_signalfd_open(signo);
        if (fd < 0) return -1;
        pthread_sigmask(SIG_BLOCK, &set, &old);
        w->was_blocked = sigismember(&old, signo);
        w->uses_signalfd = 1;
        w->write_fd = -1;
        w->active = 1;
        return fd;
    }
    int fds[2];
    if (xpio_pipe(fds) != 0) return -1;
#ifdef SIGRTMIN
    w->coalesces = signo < SIGRTMIN;
#else
    w->coalesces = 1;
#endif
    w->unread = 0;
    w->write_fd = fds[1];
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(signo, &action, &w->previous) != 0) {
        int saved = errno;
        close(fds[0]);
        close(fds[1]);
        w->write_fd = -1;
        errno = saved;
        return -1;
    }
    w->uses_signalfd = 0;
    w->active = 1;
    return fds[0];
}

/* The next delivery read from `fd`: the signal's number (and the sender's
 * pid in *pid), 0 when none is there, -1 with errno on an error. */
int xpio_signal_next(int signo, int fd, int *pid) {
    if (signo <= 0 || signo >= XPIO_SIGNALS || !watches[signo].active) {
        errno = EBADF;
        return -1;
    }
    if (watches[signo].uses_signalfd) return xpio_signalfd_read(fd, pid);
    /* Cleared before the read: a signal arriving from here on is a new
     * instance, and writes its own record. */
    watches[signo].unread = 0;
    struct record record;
    ssize_t n;
    while ((n = read(fd, &record, sizeof record)) < 0 && errno == EINTR) {}
    if (n < 0) return (errno == EAGAIN) ? 0 : -1;
    if (n != (ssize_t)sizeof record) {
        errno = EIO;
        return -1;
    }
    *pid = record.pid;
    return record.signo;
}

/* Stops watching: pending instances are discarded, then the mask or the
 * disposition is put back. The caller closes the read descriptor after. */
void xpio_signal_unwatch(int signo) {
    if (signo <= 0 || signo >= XPIO_SIGNALS || !watches[signo].active) return;
    struct watch *w = &watches[signo];
    if (w->uses_signalfd) {
        xpio_signalfd_discard(signo);
        if (!w->was_blocked) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, signo);
            pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        }
    } else {
        sigaction(signo, &w->previous, NULL);
        close(w->write_fd);
        w->write_fd = -1;
    }
    w->active = 0;
}

int xpio_signal_highest(void) {
#ifdef SIGRTMAX
    return SIGRTMAX;
#else
    return NSIG - 1;
#endif
}
