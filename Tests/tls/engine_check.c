/*
 * engine_check: drives the TLS engine (tls.so's xpio_tls_provider) without
 * the Lua side, over non-blocking sockets and poll(), following the
 * WANT_READ/WANT_WRITE it answers, as xpio.so's socket tasks will.
 *
 * It dlopens the DEBUG build (.build/debug/libxpio_tls.so, where
 * xpio_tls_engine is visible), or the RELEASE one (Embedded Swift, which
 * exports luaopen_xpio_tls only): then it calls luaopen_xpio_tls with the
 * few Lua API functions it uses stubbed below (this executable is linked
 * -rdynamic), and takes the provider from its lua_pushlightuserdata.
 * engine_check.sh builds it and runs every case against
 * `openssl s_server`/`s_client` on loopback, plus the in-process pairs
 * below (a forked engine server on a socketpair).
 *
 *   engine_check LIB client PORT HOST CA|none EXPECT   EXPECT: "ok:<text in the reply>" or "error:<message>"
 *   engine_check LIB hold PORT HOST CA                 handshake, print READY, then read: the peer is killed
 *   engine_check LIB server PORT CERT KEY [NAME CERT KEY]  one connection: echo a line uppercased, close_notify
 *   engine_check LIB pairs CERT KEY CA                 in-process cases: ALPN, stash, close_notify, eof, session
 *   engine_check LIB contexts CERT KEY CA OTHERKEY     context_new's error messages
 *
 * Environment: CHECK_MIN / CHECK_MAX (versions), CHECK_ALPN (one protocol),
 * CHECK_CERT / CHECK_KEY (client certificate). Every wait is bounded (poll
 * 5 s, alarm 30 s). Exit status 0 is a pass; each case prints one line.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>
#include "xpio_tls_abi.h"

static const xpio_tls_provider *P;
static long eagain_sends;

static long io_receive(int fd, void *buffer, size_t size) {
    ssize_t r = recv(fd, buffer, size, 0);
    return r < 0 ? -errno : r;
}

static long io_send(int fd, const void *data, size_t size) {
    ssize_t r = send(fd, data, size, MSG_NOSIGNAL);
    if (r < 0 && errno == EAGAIN) eagain_sends++;
    return r < 0 ? -errno : r;
}

static const xpio_tls_io IO = {io_receive, io_send};

static void nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Waits for the direction the engine asked for; 0 after 5 s. */
static int wait_for(int fd, int status) {
    struct pollfd p = {fd, status == XPIO_TLS_WANT_READ ? POLLIN : POLLOUT, 0};
    return poll(&p, 1, 5000) > 0;
}

#define DRIVE(fd, call)                                                       \
    ({ int s_;                                                                \
       for (;;) {                                                             \
           s_ = (call);                                                       \
           if (s_ != XPIO_TLS_WANT_READ && s_ != XPIO_TLS_WANT_WRITE) break;  \
           if (!wait_for(fd, s_)) { s_ = -1; break; }                         \
       }                                                                      \
       s_; })

static const char *message(void *c) {
    static char text[300];
    int code = 0;
    const char *m = P->error(c, &code);
    if (code) snprintf(text, sizeof text, "errno %d (%s): %s", code, strerror(code), m);
    else snprintf(text, sizeof text, "%s", m);
    return text;
}

static int write_all(void *c, int fd, const char *data, size_t size) {
    while (size > 0) {
        size_t n = 0;
        int s = DRIVE(fd, P->write(c, data, size, &n));
        if (s != XPIO_TLS_OK) return s;
        data += n;
        size -= n;
    }
    return XPIO_TLS_OK;
}

/* Reads until CLOSED (answers CLOSED), an error, or `size` bytes. */
static int read_some(void *c, int fd, char *buffer, size_t size, size_t *got) {
    *got = 0;
    while (*got < size) {
        size_t n = 0;
        int s = DRIVE(fd, P->read(c, buffer + *got, size - *got, &n));
        if (s != XPIO_TLS_OK) return s;
        *got += n;
        if (memchr(buffer, '\n', *got)) return XPIO_TLS_OK;
    }
    return XPIO_TLS_OK;
}

static void each_cert(void *user, const xpio_tls_certificate *c) {
    (void)user;
    printf("    cert subject=%s issuer=%s serial=%s not_before=%lld not_after=%lld sha256=%.16s... pem=%zu bytes",
           c->subject, c->issuer, c->serial, (long long)c->not_before, (long long)c->not_after, c->sha256, c->pem_length);
    for (int i = 0; i < c->nsan; i++) printf(" san=%s", c->san[i]);
    printf("\n");
}

static void show(void *c) {
    xpio_tls_info info;
    memset(&info, 0, sizeof info);
    P->info(c, &info);
    printf("    info version=%s cipher=%s alpn=%s servername=%s resumed=%d verified=%d\n",
           info.version ? info.version : "nil", info.cipher ? info.cipher : "nil", info.alpn ? info.alpn : "nil",
           info.servername ? info.servername : "nil", info.resumed, info.verified);
}

static void *client_context(const char *ca, const char *alpn, char *error, size_t size) {
    xpio_tls_config config;
    memset(&config, 0, sizeof config);
    const char *protocols[2] = {alpn ? alpn : getenv("CHECK_ALPN"), "h2"};
    config.ca = ca && *ca && strcmp(ca, "none") != 0 ? ca : NULL;
    config.verify = ca && strcmp(ca, "none") == 0 ? 0 : 1;
    config.min_version = getenv("CHECK_MIN");
    config.max_version = getenv("CHECK_MAX");
    config.cert = getenv("CHECK_CERT");
    config.key = getenv("CHECK_KEY");
    if (protocols[0]) { config.alpn = protocols; config.nalpn = 2; }
    config.session_cache = 1;
    return P->context_new(&config, error, size);
}

static int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); exit(2); }
    nonblocking(fd);
    return fd;
}

/* Client against openssl s_server (-www answers an HTTP page, then closes). */
static int client(int port, const char *host, const char *ca, const char *expect) {
    char error[256] = "";
    void *ctx = client_context(ca, NULL, error, sizeof error);
    if (!ctx) { printf("context error: %s\n", error); return strncmp(expect, "error:", 6) == 0 && strcmp(error, expect + 6) == 0 ? 0 : 1; }
    int fd = tcp_connect(port);
    xpio_tls_start start = {.fd = fd, .host = strcmp(host, "-") == 0 ? NULL : host};
    void *c = P->connection_new(ctx, &start, &IO, error, sizeof error);
    P->context_release(ctx);   /* the connection keeps it alive */
    if (!c) {
        printf("connection error: %s\n", error);
        close(fd);
        return strncmp(expect, "error:", 6) == 0 && strcmp(error, expect + 6) == 0 ? 0 : 1;
    }
    int s = DRIVE(fd, P->handshake(c));
    int result = 1;
    if (s != XPIO_TLS_OK) {
        const char *m = message(c);
        printf("handshake: %s\n", m);
        result = strncmp(expect, "error:", 6) == 0 && strcmp(m, expect + 6) == 0 ? 0 : 1;
    } else {
        show(c);
        P->peer_certificates(c, 1, each_cert, NULL);
        const char *request = "GET / HTTP/1.0\r\n\r\n";
        if (write_all(c, fd, request, strlen(request)) != XPIO_TLS_OK) { printf("write: %s\n", message(c)); goto out; }
        static char reply[1 << 16];
        size_t got = 0;
        for (;;) {
            size_t n = 0;
            s = DRIVE(fd, P->read(c, reply + got, sizeof reply - 1 - got, &n));
            if (s != XPIO_TLS_OK) break;
            got += n;
        }
        reply[got] = 0;
        printf("    read %zu bytes, then %s\n", got, s == XPIO_TLS_PEER_CLOSED ? "CLOSED" : message(c));
        if (strncmp(expect, "error:", 6) == 0)   /* TLS 1.3: a refused client certificate shows at the first read */
            result = s == XPIO_TLS_ERROR && strcmp(message(c), expect + 6) == 0 ? 0 : 1;
        else
            result = strncmp(expect, "ok:", 3) == 0 && strstr(reply, expect + 3) && s == XPIO_TLS_PEER_CLOSED ? 0 : 1;
    }
out:
    P->connection_release(c);
    close(fd);
    return result;
}

/* Handshake, then read while the script kills the server. */
static int hold(int port, const char *host, const char *ca) {
    char error[256] = "";
    void *ctx = client_context(ca, NULL, error, sizeof error);
    int fd = tcp_connect(port);
    xpio_tls_start start = {.fd = fd, .host = host};
    void *c = P->connection_new(ctx, &start, &IO, error, sizeof error);
    P->context_release(ctx);
    if (!c || DRIVE(fd, P->handshake(c)) != XPIO_TLS_OK) { printf("handshake failed\n"); return 1; }
    printf("READY\n");
    fflush(stdout);
    char buffer[4096];
    size_t n;
    int s;
    do s = DRIVE(fd, P->read(c, buffer, sizeof buffer, &n)); while (s == XPIO_TLS_OK);
    const char *m = s == XPIO_TLS_ERROR ? message(c) : s == XPIO_TLS_PEER_CLOSED ? "(CLOSED)" : "(timed out)";
    printf("read after kill: %s\n", m);
    P->connection_release(c);
    return strcmp(m, "xpio: tls: unexpected eof") == 0 ? 0 : 1;
}

static void *server_context(const char *cert, const char *key, const char *name, const char *ncert, const char *nkey,
                            char *error, size_t size) {
    xpio_tls_config config;
    memset(&config, 0, sizeof config);
    static const char *protocols[] = {"h2", "http/1.1"};
    config.server = 1;
    config.cert = cert;
    config.key = key;
    config.alpn = protocols;
    config.nalpn = 2;
    config.tickets = 1;
    config.verify = 1;   /* a client field: the server must ignore it */
    if (name) {
        static const char *names[1], *certs[1], *keys[1];
        names[0] = name; certs[0] = ncert; keys[0] = nkey;
        config.sni_names = names; config.sni_certs = certs; config.sni_keys = keys; config.nsni = 1;
    }
    return P->context_new(&config, error, size);
}

/* One connection from s_client: read a line, answer it uppercased, close_notify. */
static int server(int port, const char *cert, const char *key, const char *name, const char *ncert, const char *nkey) {
    char error[256] = "";
    void *ctx = server_context(cert, key, name, ncert, nkey, error, sizeof error);
    if (!ctx) { printf("server context: %s\n", error); return 1; }
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0) { perror("bind"); return 1; }
    printf("LISTENING\n");
    fflush(stdout);
    int fd = accept(l, NULL, NULL);
    nonblocking(fd);
    xpio_tls_start start = {.fd = fd};
    void *c = P->connection_new(ctx, &start, &IO, error, sizeof error);
    P->context_release(ctx);
    int s = DRIVE(fd, P->handshake(c));
    if (s != XPIO_TLS_OK) {
        printf("server handshake: %s\n", message(c));
        P->connection_release(c);
        close(fd);
        return 1;
    }
    show(c);
    char line[1024];
    size_t got = 0;
    s = read_some(c, fd, line, sizeof line, &got);
    for (size_t i = 0; i < got; i++) if (line[i] >= 'a' && line[i] <= 'z') line[i] -= 32;
    if (s == XPIO_TLS_OK) s = write_all(c, fd, line, got);
    if (s == XPIO_TLS_OK) s = DRIVE(fd, P->shutdown(c, 0));
    printf("server: echoed %zu bytes, status %d\n", got, s);
    fflush(stdout);
    P->connection_release(c);
    close(fd);
    return s == XPIO_TLS_OK ? 0 : 1;
}

/* ---- in-process pairs: a forked engine server on a socketpair ---- */

static int failures;
static void check(int ok, const char *what, const char *detail) {
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, detail ? ": " : "", detail ? detail : "");
    fflush(stdout);
    if (!ok) failures++;
}

enum { BULK = 1 << 20 };

static char subject[256];
static void first_subject(void *user, const xpio_tls_certificate *c) {
    (void)user;
    if (!subject[0]) snprintf(subject, sizeof subject, "%s", c->subject);
}

/* The server child: mode 'e' echo a line uppercased + close_notify; 'b' read
 * BULK bytes slowly and check the pattern; 'k' handshake then vanish; 'w'
 * wait for the client's close_notify (shutdown wait_peer). */
static int pair_serve(void *c, int fd, char mode) {
    int hs = DRIVE(fd, P->handshake(c));
    if (mode == 'n') {   /* requires a client certificate, gets none */
        printf("    server: %s\n", hs == XPIO_TLS_ERROR ? message(c) : "(no error)");
        return hs == XPIO_TLS_ERROR && strcmp(message(c), "peer did not return a certificate") == 0 ? 0 : 40;
    }
    if (hs != XPIO_TLS_OK) { printf("    server handshake: %s\n", message(c)); return 10; }
    if (mode == 'm') {   /* a client certificate, checked: verified, chain leaf first */
        xpio_tls_info info;
        memset(&info, 0, sizeof info);
        P->info(c, &info);
        int count = P->peer_certificates(c, 1, first_subject, NULL);
        printf("    server: verified=%d, %d certificate(s), first %s\n", info.verified, count, subject);
        if (info.verified != 1 || count < 1 || strcmp(subject, "CN=xpio-client") != 0) return 41;
        mode = 'e';
    }
    if (mode == 'k' || mode == 'r') {   /* vanish: no close_notify (the release below meets a closed fd) */
        struct linger l = {1, 0};       /* 'r': with a reset */
        if (mode == 'r') setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(fd);
        return 0;
    }
    if (mode == 'e') {
        char line[256];
        size_t got;
        if (read_some(c, fd, line, sizeof line, &got) != XPIO_TLS_OK) return 11;
        for (size_t i = 0; i < got; i++) if (line[i] >= 'a' && line[i] <= 'z') line[i] -= 32;
        if (write_all(c, fd, line, got) != XPIO_TLS_OK) return 12;
        if (DRIVE(fd, P->shutdown(c, 0)) != XPIO_TLS_OK) return 13;
        return 0;
    }
    if (mode == 'b') {
        static unsigned char buffer[4096];
        size_t total = 0;
        while (total < BULK) {
            size_t n = 0;
            int s = DRIVE(fd, P->read(c, buffer, 1000, &n));
            if (s != XPIO_TLS_OK) return 20;
            for (size_t i = 0; i < n; i++) if (buffer[i] != (unsigned char)((total + i) * 7 % 251)) return 21;
            total += n;
            if (total % 16000 < 1000) usleep(1000);   /* a slow reader */
        }
        if (write_all(c, fd, "done\n", 5) != XPIO_TLS_OK) return 22;
        if (DRIVE(fd, P->shutdown(c, 1)) != XPIO_TLS_OK) return 23;
        return 0;
    }
    if (mode == 'w') {
        char buffer[64];
        size_t n;
        int s = DRIVE(fd, P->read(c, buffer, sizeof buffer, &n));
        return s == XPIO_TLS_PEER_CLOSED ? 0 : 30;
    }
    return 99;
}

/* A connected loopback TCP pair (a reset needs TCP). */
static void tcp_pair(int sv[2]) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&a, &n);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    connect(sv[0], (struct sockaddr *)&a, sizeof a);
    sv[1] = accept(l, NULL, NULL);
    close(l);
}

static int use_tcp;

static int pair_server(void *ctx, int fd, char mode) {
    char error[256];
    xpio_tls_start start = {.fd = fd};
    void *c = P->connection_new(ctx, &start, &IO, error, sizeof error);
    if (!c) return 9;
    int status = pair_serve(c, fd, mode);
    P->connection_release(c);   /* frees everything: valgrind (RUNNER) sees no leak */
    return status;
}

/* Runs one pair: forks the server, answers the client's connection and fd. */
static pid_t pair(void *sctx, char mode, int *fd, int small_buffers) {
    int sv[2];
    if (use_tcp) tcp_pair(sv); else socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    if (small_buffers) {
        int size = 8192;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    nonblocking(sv[0]);
    nonblocking(sv[1]);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        alarm(20);
        _exit(pair_server(sctx, sv[1], mode));
    }
    close(sv[1]);
    *fd = sv[0];
    return pid;
}

static int child_status(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

static int pairs(const char *cert, const char *key, const char *ca) {
    char error[256] = "", detail[512];
    void *sctx = server_context(cert, key, NULL, NULL, NULL, error, sizeof error);
    check(sctx != NULL, "server context", error);
    void *cctx = client_context(ca, "http/1.1", error, sizeof error);   /* offers http/1.1 then h2 */
    check(cctx != NULL, "client context", error);
    if (!sctx || !cctx) return 1;

    /* 1. echo: ALPN by the server's preference, verified, info, close_notify -> CLOSED, session. */
    int fd;
    pid_t pid = pair(sctx, 'e', &fd, 0);
    xpio_tls_start start = {.fd = fd, .host = "localhost"};
    void *c = P->connection_new(cctx, &start, &IO, error, sizeof error);
    xpio_tls_info info;
    memset(&info, 0, sizeof info);
    P->info(c, &info);
    check(info.version == NULL && info.cipher == NULL && P->pending(c) == 0, "no version or cipher before the handshake", NULL);
    int s = DRIVE(fd, P->handshake(c));
    check(s == XPIO_TLS_OK, "pair handshake", s == XPIO_TLS_OK ? NULL : message(c));
    memset(&info, 0, sizeof info);
    P->info(c, &info);
    snprintf(detail, sizeof detail, "alpn=%s verified=%d version=%s servername=%s", info.alpn ? info.alpn : "nil",
             info.verified, info.version ? info.version : "nil", info.servername ? info.servername : "nil");
    check(info.alpn && strcmp(info.alpn, "h2") == 0 && info.verified == 1 && strcmp(info.servername, "localhost") == 0,
          "ALPN by the server's order, verified, SNI sent", detail);
    s = write_all(c, fd, "hello tls\n", 10);
    char line[64];
    size_t got = 0;
    s = DRIVE(fd, P->read(c, line, 1, &got));   /* one byte: the other 9 wait inside the engine */
    int pending = P->pending(c);
    size_t more = 0;
    if (s == XPIO_TLS_OK) s = read_some(c, fd, line + 1, sizeof line - 1, &more);
    got += more;
    check(s == XPIO_TLS_OK && got == 10 && memcmp(line, "HELLO TLS\n", 10) == 0 && pending == 1, "pair echo, pending", NULL);
    size_t n;
    s = DRIVE(fd, P->read(c, line, sizeof line, &n));
    check(s == XPIO_TLS_PEER_CLOSED, "close_notify reads as CLOSED", s == XPIO_TLS_ERROR ? message(c) : NULL);
    const void *der = NULL;
    size_t der_length = 0;
    int has = P->session(c, &der, &der_length);
    snprintf(detail, sizeof detail, "%zu bytes", der_length);
    check(has == 1 && der_length > 0, "session after the first read", detail);
    void *saved = malloc(der_length);
    memcpy(saved, der, der_length);
    int count = P->peer_certificates(c, 1, each_cert, NULL);
    check(count >= 1, "peer certificates", NULL);
    P->connection_release(c);
    close(fd);
    check(child_status(pid) == 0, "pair server side", NULL);

    /* 2. resumption with that session. */
    pid = pair(sctx, 'e', &fd, 0);
    xpio_tls_start again = {.fd = fd, .host = "localhost", .session = saved, .session_length = der_length};
    c = P->connection_new(cctx, &again, &IO, error, sizeof error);
    s = DRIVE(fd, P->handshake(c));
    memset(&info, 0, sizeof info);
    P->info(c, &info);
    check(s == XPIO_TLS_OK && info.resumed == 1, "session resumed", s == XPIO_TLS_OK ? NULL : message(c));
    write_all(c, fd, "x\n", 2);
    read_some(c, fd, line, sizeof line, &got);
    P->connection_release(c);
    close(fd);
    child_status(pid);
    free(saved);

    /* 3. 1 MiB through small socket buffers and a slow reader: the stash. */
    pid = pair(sctx, 'b', &fd, 1);
    xpio_tls_start bulk = {.fd = fd, .host = "localhost"};
    c = P->connection_new(cctx, &bulk, &IO, error, sizeof error);
    static unsigned char data[BULK];
    for (size_t i = 0; i < BULK; i++) data[i] = (unsigned char)(i * 7 % 251);
    eagain_sends = 0;
    long taken_after_eagain = 0, wants = 0;
    size_t sent = 0;
    s = XPIO_TLS_OK;
    while (sent < BULK && s == XPIO_TLS_OK) {
        size_t chunk = BULK - sent < 50000 ? BULK - sent : 50000;   /* more than one record per call */
        long before = eagain_sends;
        s = P->write(c, data + sent, chunk, &n);
        if (s == XPIO_TLS_WANT_READ || s == XPIO_TLS_WANT_WRITE) {
            wants++;
            if (!wait_for(fd, s)) break;
            s = XPIO_TLS_OK;
            continue;
        }
        if (s != XPIO_TLS_OK) break;
        if (n > 16384) { s = -2; break; }   /* at most one record per call */
        if (eagain_sends > before) taken_after_eagain++;
        sent += n;
    }
    check(s == XPIO_TLS_OK && sent == BULK, "1 MiB written", s == XPIO_TLS_ERROR ? message(c) : NULL);
    /* close_notify right away: shutdown flushes the stash first, answering
     * WANT_WRITE while the slow reader has not made room. */
    long shutdown_wants = 0;
    for (;;) {
        s = P->shutdown(c, 0);
        if (s != XPIO_TLS_WANT_READ && s != XPIO_TLS_WANT_WRITE) break;
        shutdown_wants++;
        if (!wait_for(fd, s)) break;
    }
    snprintf(detail, sizeof detail, "%ld wants first", shutdown_wants);
    check(s == XPIO_TLS_OK, "shutdown(0) flushes the stash, then sends close_notify", detail);
    s = read_some(c, fd, line, sizeof line, &got);   /* reading after our close_notify is allowed */
    snprintf(detail, sizeof detail, "%ld chunks stashed, %ld wants answered by later calls", taken_after_eagain, wants);
    check(s == XPIO_TLS_OK && got == 5 && memcmp(line, "done\n", 5) == 0 && taken_after_eagain > 0,
          "stash: taken chunks sent once, in order", detail);
    s = DRIVE(fd, P->read(c, line, sizeof line, &n));
    check(s == XPIO_TLS_PEER_CLOSED, "then the peer's close_notify", s == XPIO_TLS_ERROR ? message(c) : NULL);
    s = DRIVE(fd, P->shutdown(c, 1));
    check(s == XPIO_TLS_OK, "shutdown(wait) after both close_notifys", s == XPIO_TLS_ERROR ? message(c) : NULL);
    P->connection_release(c);
    close(fd);
    int status = child_status(pid);
    snprintf(detail, sizeof detail, "child status %d", status);
    check(status == 0, "slow reader got every byte in order", detail);

    /* 4. the peer vanishes without close_notify. */
    pid = pair(sctx, 'k', &fd, 0);
    xpio_tls_start vanish = {.fd = fd, .host = "localhost"};
    c = P->connection_new(cctx, &vanish, &IO, error, sizeof error);
    s = DRIVE(fd, P->handshake(c));
    if (s == XPIO_TLS_OK) s = DRIVE(fd, P->read(c, line, sizeof line, &n));
    check(s == XPIO_TLS_ERROR && strcmp(message(c), "xpio: tls: unexpected eof") == 0, "peer gone: unexpected eof", message(c));
    s = P->write(c, "x", 1, &n);
    check(s == XPIO_TLS_ERROR && strcmp(message(c), "xpio: tls: unexpected eof") == 0, "later calls repeat the fatal error", message(c));
    P->connection_release(c);   /* after a fatal error: no close_notify attempted */
    close(fd);
    child_status(pid);

    /* 5. release sends close_notify on its own (the server reads CLOSED). */
    pid = pair(sctx, 'w', &fd, 0);
    xpio_tls_start polite = {.fd = fd, .host = "localhost"};
    c = P->connection_new(cctx, &polite, &IO, error, sizeof error);
    s = DRIVE(fd, P->handshake(c));
    P->connection_release(c);
    status = child_status(pid);
    close(fd);
    check(s == XPIO_TLS_OK && status == 0, "connection_release sends close_notify", NULL);

    /* 6. kept bytes (STARTTLS pushback): the server is given the ClientHello
     * already read from the socket. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    nonblocking(sv[0]);
    nonblocking(sv[1]);
    pid = fork();
    if (pid == 0) {
        close(sv[1]);
        alarm(20);
        xpio_tls_start cs = {.fd = sv[0], .host = "localhost"};
        void *cc = P->connection_new(cctx, &cs, &IO, error, sizeof error);
        if (DRIVE(sv[0], P->handshake(cc)) != XPIO_TLS_OK) _exit(1);
        if (write_all(cc, sv[0], "kept\n", 5) != XPIO_TLS_OK) _exit(2);
        size_t g;
        char b[16];
        int r = DRIVE(sv[0], P->read(cc, b, sizeof b, &g));
        _exit(r == XPIO_TLS_PEER_CLOSED ? 0 : 3);
    }
    close(sv[0]);
    struct pollfd pf = {sv[1], POLLIN, 0};
    poll(&pf, 1, 5000);
    static char hello[65536];
    ssize_t k = recv(sv[1], hello, sizeof hello, 0);   /* the ClientHello, read "before wrap" */
    xpio_tls_start pushback = {.fd = sv[1], .kept = hello, .kept_length = k > 0 ? (size_t)k : 0};
    c = P->connection_new(sctx, &pushback, &IO, error, sizeof error);
    memset(hello, 0, sizeof hello);   /* the engine must have copied them */
    s = DRIVE(sv[1], P->handshake(c));
    if (s == XPIO_TLS_OK) s = read_some(c, sv[1], line, sizeof line, &got);
    if (s == XPIO_TLS_OK) s = DRIVE(sv[1], P->shutdown(c, 0));
    status = child_status(pid);
    snprintf(detail, sizeof detail, "%zd kept bytes, client status %d", k, status);
    check(s == XPIO_TLS_OK && got == 5 && memcmp(line, "kept\n", 5) == 0 && status == 0, "kept bytes read first", detail);
    P->connection_release(c);
    close(sv[1]);

    /* 8. client certificates: required and sent (the server sees it verified,
     * leaf first), required and missing (the server's handshake fails). */
    const char *client_cert = getenv("CHECK_CLIENT_CERT"), *client_key = getenv("CHECK_CLIENT_KEY");
    xpio_tls_config mc;
    memset(&mc, 0, sizeof mc);
    mc.server = 1; mc.cert = cert; mc.key = key; mc.client_ca = ca; mc.verify_client = 2; mc.tickets = 1;
    void *mctx = P->context_new(&mc, error, sizeof error);
    check(mctx != NULL, "server context requiring client certificates", mctx ? NULL : error);
    memset(&mc, 0, sizeof mc);
    mc.ca = ca; mc.verify = 1; mc.cert = client_cert; mc.key = client_key;
    void *ccert = P->context_new(&mc, error, sizeof error);
    check(ccert != NULL, "client context with a certificate", ccert ? NULL : error);
    if (mctx && ccert) {
        pid = pair(mctx, 'm', &fd, 0);
        xpio_tls_start ms = {.fd = fd, .host = "localhost"};
        c = P->connection_new(ccert, &ms, &IO, error, sizeof error);
        s = DRIVE(fd, P->handshake(c));
        if (s == XPIO_TLS_OK) s = write_all(c, fd, "mtls\n", 5);
        if (s == XPIO_TLS_OK) s = read_some(c, fd, line, sizeof line, &got);
        status = child_status(pid);
        snprintf(detail, sizeof detail, "server status %d", status);
        check(s == XPIO_TLS_OK && got == 5 && status == 0, "client certificate verified by the engine server", detail);
        P->connection_release(c);
        close(fd);

        pid = pair(mctx, 'n', &fd, 0);
        xpio_tls_start ns = {.fd = fd, .host = "localhost"};
        c = P->connection_new(cctx, &ns, &IO, error, sizeof error);
        s = DRIVE(fd, P->handshake(c));
        if (s == XPIO_TLS_OK) s = DRIVE(fd, P->read(c, line, sizeof line, &n));   /* TLS 1.3: the refusal comes after */
        snprintf(detail, sizeof detail, "client: %s", s == XPIO_TLS_ERROR ? message(c) : "(no error)");
        status = child_status(pid);
        check(status == 0 && s == XPIO_TLS_ERROR && strcmp(message(c), "tlsv13 alert certificate required") == 0,
              "required client certificate missing", detail);
        P->connection_release(c);
        close(fd);
    }
    if (mctx) P->context_release(mctx);
    if (ccert) P->context_release(ccert);

    /* 9. tickets = 0: no session to resume; the start's ALPN overrides the context's. */
    xpio_tls_config tc;
    memset(&tc, 0, sizeof tc);
    static const char *server_protocols[] = {"h2", "http/1.1"};
    tc.server = 1; tc.cert = cert; tc.key = key; tc.tickets = 0; tc.alpn = server_protocols; tc.nalpn = 2;
    void *tctx = P->context_new(&tc, error, sizeof error);
    if (tctx) {
        pid = pair(tctx, 'e', &fd, 0);
        static const char *only[] = {"http/1.1"};
        xpio_tls_start ts = {.fd = fd, .host = "localhost", .alpn = only, .nalpn = 1};
        c = P->connection_new(cctx, &ts, &IO, error, sizeof error);
        s = DRIVE(fd, P->handshake(c));
        memset(&info, 0, sizeof info);
        P->info(c, &info);
        write_all(c, fd, "t\n", 2);
        read_some(c, fd, line, sizeof line, &got);
        s = DRIVE(fd, P->read(c, line, sizeof line, &n));
        der = NULL;
        der_length = 0;
        has = P->session(c, &der, &der_length);
        snprintf(detail, sizeof detail, "session %d, alpn %s", has, info.alpn ? info.alpn : "nil");
        check(s == XPIO_TLS_PEER_CLOSED && has == 0 && info.alpn && strcmp(info.alpn, "http/1.1") == 0,
              "tickets=0 leaves no session; wrap's ALPN overrides", detail);
        P->connection_release(c);
        close(fd);
        child_status(pid);
        P->context_release(tctx);
    } else {
        check(0, "tickets=0 server context", error);
    }

    /* 10. ignore_unexpected_eof: a vanished peer reads as CLOSED. */
    xpio_tls_config ic;
    memset(&ic, 0, sizeof ic);
    ic.ca = ca; ic.verify = 1; ic.ignore_unexpected_eof = 1;
    void *ictx = P->context_new(&ic, error, sizeof error);
    pid = pair(sctx, 'k', &fd, 0);
    xpio_tls_start is = {.fd = fd, .host = "localhost"};
    c = P->connection_new(ictx, &is, &IO, error, sizeof error);
    P->context_release(ictx);
    s = DRIVE(fd, P->handshake(c));
    if (s == XPIO_TLS_OK) s = DRIVE(fd, P->read(c, line, sizeof line, &n));
    check(s == XPIO_TLS_PEER_CLOSED, "ignore_unexpected_eof: vanished peer reads as CLOSED", s == XPIO_TLS_ERROR ? message(c) : NULL);
    P->connection_release(c);
    close(fd);
    child_status(pid);

    /* 11. a reset: ERROR with the errno. */
    use_tcp = 1;
    pid = pair(sctx, 'r', &fd, 0);
    use_tcp = 0;
    xpio_tls_start rs = {.fd = fd, .host = "localhost"};
    c = P->connection_new(cctx, &rs, &IO, error, sizeof error);
    s = DRIVE(fd, P->handshake(c));
    child_status(pid);
    if (s == XPIO_TLS_OK) s = DRIVE(fd, P->read(c, line, sizeof line, &n));
    int code = 0;
    if (s == XPIO_TLS_ERROR) P->error(c, &code);
    check(s == XPIO_TLS_ERROR && code == ECONNRESET, "reset: ERROR with ECONNRESET", s == XPIO_TLS_ERROR ? message(c) : "(no error)");
    P->connection_release(c);
    close(fd);

    /* 7. no host with verification on. */
    xpio_tls_start nohost = {.fd = -1};
    c = P->connection_new(cctx, &nohost, &IO, error, sizeof error);
    check(c == NULL && strcmp(error, "xpio: tls: no host name to verify") == 0, "no host to verify", error);

    P->context_release(cctx);
    P->context_release(sctx);
    return failures ? 1 : 0;
}

static int expect_error(const xpio_tls_config *config, const char *want, const char *what) {
    char error[256] = "";
    void *ctx = P->context_new(config, error, sizeof error);
    if (ctx) P->context_release(ctx);
    int ok = ctx == NULL && strncmp(error, want, strlen(want)) == 0;
    check(ok, what, error);
    return ok;
}

static int contexts(const char *cert, const char *key, const char *ca, const char *other_key) {
    xpio_tls_config c;
    const char *encrypted = getenv("CHECK_ENCRYPTED_KEY");   /* key's copy, encrypted with "secret" */
    if (encrypted) {
        char error[256] = "";
        memset(&c, 0, sizeof c); c.server = 1; c.cert = cert; c.key = encrypted; c.password = "secret";
        void *ctx = P->context_new(&c, error, sizeof error);
        check(ctx != NULL, "encrypted key with its password", ctx ? NULL : error);
        if (ctx) P->context_release(ctx);
        memset(&c, 0, sizeof c); c.server = 1; c.cert = cert; c.key = encrypted; c.password = "wrong";
        expect_error(&c, "xpio: tls: cannot load key: ", "encrypted key, wrong password");
        memset(&c, 0, sizeof c); c.server = 1; c.cert = cert; c.key = encrypted;
        expect_error(&c, "xpio: tls: cannot load key: ", "encrypted key, no password (no prompt)");
    }
    memset(&c, 0, sizeof c); c.verify = 1; c.min_version = "1.4";
    expect_error(&c, "xpio: tls: unknown TLS version", "unknown version");
    memset(&c, 0, sizeof c); c.server = 1;
    expect_error(&c, "xpio: tls: a server needs cert and key", "server without cert");
    memset(&c, 0, sizeof c); c.server = 1; c.cert = "/nonexistent.pem"; c.key = key;
    expect_error(&c, "xpio: tls: cannot load certificate: ", "missing certificate");
    memset(&c, 0, sizeof c); c.server = 1; c.cert = cert; c.key = "/nonexistent.key";
    expect_error(&c, "xpio: tls: cannot load key: ", "missing key");
    memset(&c, 0, sizeof c); c.server = 1; c.cert = cert; c.key = other_key;
    expect_error(&c, "xpio: tls: certificate and key do not match", "mismatched key");
    memset(&c, 0, sizeof c); c.verify = 1; c.ca = "/nonexistent-ca.pem";
    expect_error(&c, "xpio: tls: cannot load CA: ", "missing CA");
    memset(&c, 0, sizeof c); c.verify = 1; c.ciphers = "NOPE-NOT-A-CIPHER";
    expect_error(&c, "xpio: tls: invalid ciphers", "bad ciphers");
    memset(&c, 0, sizeof c); c.verify = 1; c.ciphersuites = "TLS_NOPE";
    expect_error(&c, "xpio: tls: invalid ciphersuites", "bad ciphersuites");
    memset(&c, 0, sizeof c); c.verify = 1; c.ca = ca;
    char error[256];
    void *ctx = P->context_new(&c, error, sizeof error);
    check(ctx != NULL, "client context with a CA file", ctx ? NULL : error);
    if (ctx) P->context_release(ctx);
    return failures ? 1 : 0;
}

/* Stand-ins for the Lua API luaopen_xpio_tls calls (Sources/CTLSModule/module.c):
 * `require "xpio"` does nothing, the registry's "xpio.tls.install" is a
 * function, and the light userdata it is given is the provider. */
static void *pushed;
int lua_getglobal(void *L, const char *name) { (void)L; (void)name; return 6; }
const char *lua_pushstring(void *L, const char *s) { (void)L; return s; }
void lua_callk(void *L, int nargs, int nresults, intptr_t ctx, void *k) { (void)L; (void)nargs; (void)nresults; (void)ctx; (void)k; }
void lua_settop(void *L, int index) { (void)L; (void)index; }
int lua_getfield(void *L, int index, const char *key) { (void)L; (void)index; return strcmp(key, "xpio.tls.install") == 0 ? 6 : 0; }
void lua_pushlightuserdata(void *L, void *p) { (void)L; pushed = p; }
int luaL_error(void *L, const char *format, ...) { (void)L; fprintf(stderr, "luaL_error: %s\n", format); exit(2); }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: see the header comment\n"); return 2; }
    alarm(30);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *lib = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);   /* lazy: luaopen_xpio_tls's Lua symbols stay unresolved */
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 2; }
    const xpio_tls_provider *(*engine)(void) = (const xpio_tls_provider *(*)(void))dlsym(lib, "xpio_tls_engine");
    if (engine) {
        P = engine();
    } else {   /* the release build: through luaopen_xpio_tls */
        int (*luaopen)(void *) = (int (*)(void *))dlsym(lib, "luaopen_xpio_tls");
        if (!luaopen) { fprintf(stderr, "neither xpio_tls_engine nor luaopen_xpio_tls: %s\n", dlerror()); return 2; }
        luaopen(NULL);
        P = pushed;
        if (!P) { fprintf(stderr, "luaopen_xpio_tls pushed no provider\n"); return 2; }
    }
    if (P->abi != XPIO_TLS_ABI || strcmp(P->version, XPIO_VERSION) != 0) { fprintf(stderr, "abi/version mismatch\n"); return 2; }
    const char *mode = argv[2];
    if (!strcmp(mode, "client") && argc == 7) return client(atoi(argv[3]), argv[4], argv[5], argv[6]);
    if (!strcmp(mode, "hold") && argc == 6) return hold(atoi(argv[3]), argv[4], argv[5]);
    if (!strcmp(mode, "server") && (argc == 6 || argc == 9))
        return server(atoi(argv[3]), argv[4], argv[5], argc == 9 ? argv[6] : NULL, argc == 9 ? argv[7] : NULL, argc == 9 ? argv[8] : NULL);
    if (!strcmp(mode, "pairs") && argc == 6) return pairs(argv[3], argv[4], argv[5]);
    if (!strcmp(mode, "contexts") && argc == 7) return contexts(argv[3], argv[4], argv[5], argv[6]);
    fprintf(stderr, "bad arguments\n");
    return 2;
}
