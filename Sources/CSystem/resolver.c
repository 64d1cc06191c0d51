/*
 * Name resolution off the Lua thread: getaddrinfo on a small pool of worker
 * threads. A request's completion is a wake-up (an eventfd; a pipe in the
 * portable build, xpio_platform.h) the worker writes once, so
 * a task queue can wait on it like on any descriptor.
 *
 * A request has two owners, the submitter (Swift's Resolution) and the
 * worker, counted in `owners`: whichever lets go last frees it, closes its
 * wake-up and frees the results. So a socket or queue dropped while a name
 * is being resolved leaks nothing, and the worker never writes to a
 * descriptor number that has been closed (and maybe reused).
 *
 * Workers start when there is work and no idle worker, up to XPIO_RESOLVERS,
 * and then park on a condition variable: no thread is left running. They
 * block every signal, so signals keep going to the Lua thread.
 */
#include "xpio_sys.h"
#include <pthread.h>
#include <stdatomic.h>

#define XPIO_RESOLVERS 4

struct xpio_resolution {
    char *host;              /* NULL: no host (a service only) */
    char *service;           /* NULL: no service */
    int family;
    int passive;
    int wakeup[2];           /* [0] to wait on, [1] the worker writes */
    atomic_int owners;
    atomic_int done;
    int error;               /* an EAI_ code, 0 for success */
    int system_error;        /* errno, for EAI_SYSTEM */
    struct addrinfo *result;
    struct xpio_resolution *next;
};

/* Milliseconds each lookup waits first: the tests' way to catch a lookup
 * in flight (XPIO_RESOLVER_DELAY, read at load). */
static int xpio_resolver_delay_ms;
void xpio_set_resolver_delay(int milliseconds) { xpio_resolver_delay_ms = milliseconds; }

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;
static struct xpio_resolution *queue_head, *queue_tail;
static int workers, idle_workers;

static void release(struct xpio_resolution *r) {
    if (atomic_fetch_sub(&r->owners, 1) != 1) return;
    if (r->result) freeaddrinfo(r->result);
    xpio_wakeup_close(r->wakeup);
    free(r->host);
    free(r->service);
    free(r);
}

static void *worker(void *unused) {
    (void)unused;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (!queue_head) {
            idle_workers++;
            pthread_cond_wait(&work, &lock);
            idle_workers--;
        }
        struct xpio_resolution *r = queue_head;
        queue_head = r->next;
        if (!queue_head) queue_tail = NULL;
        pthread_mutex_unlock(&lock);

        if (xpio_resolver_delay_ms > 0) {
            struct timespec delay = { xpio_resolver_delay_ms / 1000, (xpio_resolver_delay_ms % 1000) * 1000000L };
            while (nanosleep(&delay, &delay) != 0 && errno == EINTR) {}
        }
        /* Nobody waits any more: skip the lookup. */
        if (atomic_load(&r->owners) > 1) {
            struct addrinfo hints;
            memset(&hints, 0, sizeof hints);
            hints.ai_family = r->family;
            hints.ai_socktype = SOCK_STREAM;
            hints.ai_flags = r->passive ? AI_PASSIVE : 0;
            r->error = getaddrinfo(r->host, r->service, &hints, &r->result);
            if (r->error == EAI_SYSTEM) r->system_error = errno;
        }
        atomic_store(&r->done, 1);
        xpio_wakeup_signal(r->wakeup[1]);
        release(r);

        pthread_mutex_lock(&lock);
    }
    return NULL;
}

static char *copy(const char *text, size_t length) {
    char *out = malloc(length + 1);
    if (out) {
        memcpy(out, text, length);
        out[length] = 0;
    }
    return out;
}

/* Starts resolving; NULL with errno set when it cannot (no memory, no
 * descriptor, no thread). `host` or `service` may be empty. */
struct xpio_resolution *xpio_resolve_start(const char *host, size_t host_length, const char *service,
                                           size_t service_length, int family, int passive) {
    struct xpio_resolution *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->wakeup[0] = r->wakeup[1] = -1;
    r->family = family;
    r->passive = passive;
    atomic_init(&r->owners, 1);
    if ((host_length && !(r->host = copy(host, host_length))) ||
        (service_length && !(r->service = copy(service, service_length)))) {
        release(r);
        errno = ENOMEM;
        return NULL;
    }
    if (xpio_wakeup_open(r->wakeup) != 0) {
        int saved = errno;
        release(r);
        errno = saved;
        return NULL;
    }
    atomic_fetch_add(&r->owners, 1); /* the worker's */
    pthread_mutex_lock(&lock);
    if (queue_tail) queue_tail->next = r;
    else queue_head = r;
    queue_tail = r;
    int err = 0;
    if (idle_workers == 0 && workers < XPIO_RESOLVERS) {
        err = xpio_start_thread(worker, NULL, 256 * 1024);
        if (err == 0) workers++;
    }
    if (err != 0 && workers == 0) {
        /* No thread at all: take the request back. */
        queue_head = queue_tail = NULL;
        pthread_mutex_unlock(&lock);
        atomic_fetch_sub(&r->owners, 1);
        release(r);
        errno = err;
        return NULL;
    }
    pthread_cond_signal(&work);
    pthread_mutex_unlock(&lock);
    return r;
}

int xpio_resolve_descriptor(const struct xpio_resolution *r) { return r->wakeup[0]; }
int xpio_resolve_done(struct xpio_resolution *r) { return atomic_load(&r->done); }
int xpio_resolve_error(const struct xpio_resolution *r) { return r->error; }
int xpio_resolve_system_error(const struct xpio_resolution *r) { return r->system_error; }
const struct addrinfo *xpio_resolve_result(const struct xpio_resolution *r) { return r->result; }
void xpio_resolve_release(struct xpio_resolution *r) { release(r); }
