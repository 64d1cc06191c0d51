/*
 * Where xpio.so and xpio/tls.so meet.
 *
 * xpio.so links no TLS library: it stays libc-only. `require "xpio.tls"`
 * loads tls.so, whose luaopen_xpio_tls hands xpio.so one table of C
 * functions (an `xpio_tls_provider`): the TLS engine, OpenSSL behind it.
 * xpio.so keeps the whole Lua side (the glue generated from Spec/tls.spec,
 * argument checks, tasks, blocking): a socket wrapped with TLS reads and
 * writes through the provider instead of read(2) and write(2), and every
 * buffered read, triad, timeout and `<close>` works on it unchanged.
 *
 * The engine does its I/O through the `xpio_tls_io` that xpio.so passes
 * (XPIO's own system-call layer: recv, and send with MSG_NOSIGNAL), never
 * on its own, and it never blocks: an operation that cannot finish answers
 * WANT_READ or WANT_WRITE, the direction the engine waits for, and the
 * socket's task waits for exactly that.
 *
 * Plain C values only: no Lua, no OpenSSL type crosses. Strings a provider
 * returns stay valid until the next call on the same object.
 */
#ifndef XPIO_TLS_ABI_H
#define XPIO_TLS_ABI_H

#include <stddef.h>
#include <stdint.h>

/* The version of XPIO both modules are built from: xpio.so refuses a
 * tls.so of another version, whose structures could differ. */
#define XPIO_VERSION "0.3.0"
static inline const char *xpio_version(void) { return XPIO_VERSION; }

/* Raised whenever a struct below or a function's meaning changes. */
#define XPIO_TLS_ABI 2

/* What every operation on a connection answers. */
enum {
    XPIO_TLS_OK = 0,
    XPIO_TLS_WANT_READ = 1,  /* call again once the descriptor is readable */
    XPIO_TLS_WANT_WRITE = 2, /* ... once it is writable */
    XPIO_TLS_PEER_CLOSED = 3, /* read: the peer's close_notify (end of stream) */
    XPIO_TLS_ERROR = 4       /* see `error` */
};

/* XPIO's system calls, for the engine's BIO. Each answers a count >= 0, or
 * -errno (-EAGAIN when it would block). `send` adds MSG_NOSIGNAL. */
typedef struct xpio_tls_io {
    long (*receive)(int fd, void *buffer, size_t size);
    long (*send)(int fd, const void *data, size_t size);
} xpio_tls_io;

/* tls.client{...} and tls.server{...}: strings are NUL-terminated or NULL
 * (left out); numbers are as below. */
typedef struct xpio_tls_config {
    int server;                 /* 0: tls.client, 1: tls.server */
    /* both */
    const char *cert;           /* PEM file: the certificate chain, leaf first */
    const char *key;            /* PEM file: its private key */
    const char *password;       /* the key's password */
    const char *const *alpn;    /* protocols, in order of preference */
    int nalpn;
    const char *min_version;    /* "1.0", "1.1", "1.2", "1.3"; NULL: "1.2" */
    const char *max_version;    /* NULL: the highest */
    const char *ciphers;        /* TLS 1.2 and below (SSL_CTX_set_cipher_list) */
    const char *ciphersuites;   /* TLS 1.3 (SSL_CTX_set_ciphersuites) */
    /* client */
    const char *ca;             /* PEM file or directory of trusted CAs; NULL: the system store */
    int verify;                 /* 1: chain and name (the default); 0: nothing (verify = false) */
    int session_cache;          /* 1: keep sessions for resumption (client) */
    int ignore_unexpected_eof;  /* 1: a peer vanishing without close_notify reads as end of stream */
    /* server */
    const char *const *sni_names;  /* SNI map: name -> cert, key */
    const char *const *sni_certs;
    const char *const *sni_keys;
    int nsni;
    const char *client_ca;      /* PEM file: CAs for client certificates */
    int verify_client;          /* 0: none, 1: "optional", 2: "require" */
    int tickets;                /* 1: session tickets (the default), 0: none */
} xpio_tls_config;

/* tls.wrap(sock, ctx, opts): how one connection starts. */
typedef struct xpio_tls_start {
    int fd;                     /* the socket's descriptor: the engine never closes it */
    const void *kept;           /* bytes the socket read before wrap: TLS reads them first */
    size_t kept_length;
    const char *host;           /* client: SNI (unless an IP literal) and the name or IP checked */
    const char *const *alpn;    /* overrides the context's list, or NULL */
    int nalpn;
    const void *session;        /* client: a session to resume (from `session`), or NULL */
    size_t session_length;
} xpio_tls_start;

/* tlsinfo(): strings NULL when not known yet. */
typedef struct xpio_tls_info {
    const char *version;        /* "TLSv1.3" */
    const char *cipher;         /* "TLS_AES_256_GCM_SHA384" */
    const char *alpn;           /* the protocol agreed, or NULL */
    const char *servername;     /* the SNI name sent (client) or received (server) */
    int resumed;
    int verified;               /* 1: the peer's chain and name were checked and passed */
} xpio_tls_info;

/* peer_certificate(): one certificate. */
typedef struct xpio_tls_certificate {
    const char *subject;        /* RFC 2253 one line: "CN=localhost" */
    const char *issuer;
    const char *serial;         /* hex */
    int64_t not_before;         /* epoch seconds */
    int64_t not_after;
    const char *const *san;     /* "DNS:name", "IP:address" */
    int nsan;
    const char *sha256;         /* lowercase hex, no colons */
    const char *pem;
    size_t pem_length;
} xpio_tls_certificate;

typedef struct xpio_tls_provider {
    int abi;                    /* XPIO_TLS_ABI */
    const char *version;        /* the XPIO version tls.so was built from */

    /* A context, or NULL with a message in error[size]
     * ("xpio: tls: cannot load certificate: ..."). Contexts are shared by
     * the connections made from them and freed after the last one. */
    void *(*context_new)(const xpio_tls_config *config, char *error, size_t size);
    void (*context_release)(void *context);

    /* A connection over start->fd (client or server as the context is), or
     * NULL with a message. `io` outlives the connection. */
    void *(*connection_new)(void *context, const xpio_tls_start *start, const xpio_tls_io *io,
                            char *error, size_t size);
    /* Frees the connection after a best-effort close_notify that never
     * blocks. The descriptor stays open. */
    void (*connection_release)(void *connection);

    /* Each answers OK or a status above. */
    int (*handshake)(void *connection);
    /* OK with *count bytes (>= 1); PEER_CLOSED at the peer's close_notify. */
    int (*read)(void *connection, void *buffer, size_t size, size_t *count);
    /* OK with *count bytes taken (>= 1 when size >= 1): a record that could
     * not go out at once is kept by the engine, counted as taken, and sent
     * first by the next call of any kind; it is never sent twice. */
    int (*write)(void *connection, const void *data, size_t size, size_t *count);
    /* Sends close_notify (once) and flushes what is kept; with wait_peer,
     * also reads until the peer's close_notify. */
    int (*shutdown)(void *connection, int wait_peer);
    /* Decrypted bytes wait inside the engine: a read answers without I/O. */
    int (*pending)(void *connection);
    /* How many decrypted bytes wait inside the engine (what `buffered`
     * counts besides the socket's own). */
    size_t (*unread)(void *connection);
    /* 1 while a record `write` counted as taken has not gone out yet (a
     * write of nothing sends it): a blocking write is not done until 0. */
    int (*unsent)(void *connection);
    /* The last ERROR's message ("xpio: tls: certificate verify failed:
     * hostname mismatch", "tlsv1 alert protocol version", "xpio: tls:
     * unexpected eof") and, for a failed system call, its errno in *code
     * (0 otherwise; then the message is what to report). */
    const char *(*error)(void *connection, int *code);

    int (*info)(void *connection, xpio_tls_info *info);
    /* Calls each(user, certificate) for the peer's certificate, or for its
     * whole chain (leaf first) when `chain`; answers how many (0: none). */
    int (*peer_certificates)(void *connection, int chain,
                             void (*each)(void *user, const xpio_tls_certificate *certificate), void *user);
    /* The session to resume later, DER-encoded in *data (valid until the
     * next call), or 0 when there is none yet. */
    int (*session)(void *connection, const void **data, size_t *length);
} xpio_tls_provider;

#endif
