/* Shared helpers for the C floor's TLS rows: OpenSSL 3, TLS 1.3 only, the
 * client verifying the server's chain against the bench's CA and its name
 * ("localhost", also sent as SNI), as the Lua programs do. */
#ifndef BENCH_TLS_COMMON_H
#define BENCH_TLS_COMMON_H
#include "common.h"
#include <openssl/err.h>
#include <openssl/ssl.h>

#define TLS_CHECK(cond) \
  do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                      ERR_print_errors_fp(stderr); exit(1); } } while (0)

/* The certificates' directory: argv[i], or build/bench/tls (run from the root). */
static inline const char *tls_dir(int argc, char **argv, int i) {
  return i < argc ? argv[i] : "build/bench/tls";
}

static inline void tls_path(char *out, size_t size, const char *dir, const char *file) {
  TLS_CHECK(snprintf(out, size, "%s/%s", dir, file) < (int)size);
}

static inline void tls_common_ctx(SSL_CTX *ctx) {
  TLS_CHECK(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION));
  TLS_CHECK(SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION));
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
}

static inline SSL_CTX *tls_client_ctx(const char *dir) {
  char ca[4096];
  tls_path(ca, sizeof ca, dir, "ca.pem");
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  TLS_CHECK(ctx);
  tls_common_ctx(ctx);
  TLS_CHECK(SSL_CTX_load_verify_locations(ctx, ca, NULL) == 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  return ctx;
}

static inline SSL_CTX *tls_server_ctx(const char *dir) {
  char cert[4096], key[4096];
  tls_path(cert, sizeof cert, dir, "cert.pem");
  tls_path(key, sizeof key, dir, "key.pem");
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  TLS_CHECK(ctx);
  tls_common_ctx(ctx);
  TLS_CHECK(SSL_CTX_use_certificate_chain_file(ctx, cert) == 1);
  TLS_CHECK(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1);
  TLS_CHECK(SSL_CTX_check_private_key(ctx) == 1);
  return ctx;
}

static inline SSL *tls_client(SSL_CTX *ctx, int fd) {
  SSL *ssl = SSL_new(ctx);
  TLS_CHECK(ssl && SSL_set_fd(ssl, fd) == 1);
  TLS_CHECK(SSL_set_tlsext_host_name(ssl, "localhost") == 1);
  TLS_CHECK(SSL_set1_host(ssl, "localhost") == 1);
  SSL_set_connect_state(ssl);
  return ssl;
}

static inline SSL *tls_server(SSL_CTX *ctx, int fd) {
  SSL *ssl = SSL_new(ctx);
  TLS_CHECK(ssl && SSL_set_fd(ssl, fd) == 1);
  SSL_set_accept_state(ssl);
  return ssl;
}

/* The epoll events a TLS call that returned `ret` waits for; 0 when it
 * succeeded. Anything but WANT_READ or WANT_WRITE fails the run. */
static inline unsigned tls_want(SSL *ssl, int ret) {
  if (ret > 0) return 0;
  int e = SSL_get_error(ssl, ret);
  if (e == SSL_ERROR_WANT_READ) return EPOLLIN;
  if (e == SSL_ERROR_WANT_WRITE) return EPOLLOUT;
  fprintf(stderr, "TLS error %d: ", e);
  ERR_print_errors_fp(stderr);
  fprintf(stderr, "(errno: %s)\n", strerror(errno));
  exit(1);
}

/* One endpoint in the loop: its descriptor's interest follows what TLS asks. */
struct tls_end { SSL *ssl; int fd; unsigned interest; };

static inline void tls_end_add(int ep, struct tls_end *end, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = end};
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, end->fd, &ev) == 0);
  end->interest = events;
}

static inline void tls_end_want(int ep, struct tls_end *end, unsigned events) {
  if (events == end->interest) return;
  struct epoll_event ev = {.events = events, .data.ptr = end};
  CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, end->fd, &ev) == 0);
  end->interest = events;
}

/* Both handshakes of a connected pair, in one epoll loop: each side is
 * tried once, then again whenever its descriptor is ready as TLS asked.
 * The client's handshake verifies the server (SSL_VERIFY_PEER, host). */
static inline void tls_handshake_pair(int ep, SSL *client, SSL *server) {
  struct tls_end ends[2] = {{client, SSL_get_fd(client), 0}, {server, SSL_get_fd(server), 0}};
  int done[2] = {0, 0}, left = 2;
  for (int i = 0; i < 2; i++) {
    unsigned want = tls_want(ends[i].ssl, SSL_do_handshake(ends[i].ssl));
    if (!want) { done[i] = 1; left--; }
    tls_end_add(ep, &ends[i], want);
  }
  while (left > 0) {
    struct epoll_event evs[2];
    int k = epoll_wait(ep, evs, 2, WAIT_MS);
    CHECK(k > 0);
    for (int e = 0; e < k; e++) {
      struct tls_end *end = evs[e].data.ptr;
      int i = end == &ends[0] ? 0 : 1;
      if (done[i]) continue;
      unsigned want = tls_want(end->ssl, SSL_do_handshake(end->ssl));
      if (!want) { done[i] = 1; left--; }
      tls_end_want(ep, end, want); /* 0 once done: no more events */
    }
  }
  for (int i = 0; i < 2; i++) CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, ends[i].fd, NULL) == 0);
}

/* What the handshake must have agreed: TLS 1.3, the server's certificate
 * verified by the client. */
static inline void tls_check_pair(SSL *client, SSL *server) {
  TLS_CHECK(SSL_version(client) == TLS1_3_VERSION && SSL_version(server) == TLS1_3_VERSION);
  TLS_CHECK(SSL_get0_peer_certificate(client) != NULL);
  TLS_CHECK(SSL_get_verify_result(client) == X509_V_OK);
}
#endif
