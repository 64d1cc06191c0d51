/* tls_bulk MIB [DIR]: MIB MiB over TLS 1.3 on TCP loopback, 64 KiB writes
 * and reads, both ends in one epoll loop; the client (verifying the server
 * against DIR/ca.pem) writes, then sends close_notify; the server reads to
 * the clean end. Timing starts after the handshake. Prints MiB/s. */
#include "tls_common.h"

#define CHUNK 65536

int main(int argc, char **argv) {
  long mib = arg_long(argc, argv, 1, 64);
  const char *dir = tls_dir(argc, argv, 2);
  long long total = (long long)mib << 20, sent = 0, got = 0;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in addr;
  int lst = tcp_listener(&addr), cfd, sfd;
  tcp_pair(ep, lst, &addr, &cfd, &sfd);
  SSL_CTX *cctx = tls_client_ctx(dir), *sctx = tls_server_ctx(dir);
  SSL *cli = tls_client(cctx, cfd), *srv = tls_server(sctx, sfd);
  tls_handshake_pair(ep, cli, srv);
  tls_check_pair(cli, srv);

  static char out[CHUNK], in[CHUNK];
  memset(out, 'x', sizeof out);
  struct tls_end wend = {cli, cfd, 0}, rend = {srv, sfd, 0};
  tls_end_add(ep, &wend, EPOLLOUT);
  tls_end_add(ep, &rend, EPOLLIN);
  int closed = 0, eof = 0;
  double t0 = now();
  while (!eof) {
    struct epoll_event evs[2];
    int k = epoll_wait(ep, evs, 2, WAIT_MS);
    CHECK(k > 0);
    for (int e = 0; e < k; e++) {
      if (evs[e].data.ptr == &wend) {
        unsigned want = 0;
        while (sent < total) {
          size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
          int w = SSL_write(cli, out, (int)n);
          if ((want = tls_want(cli, w))) break;
          sent += w;
        }
        if (sent == total && !closed) {
          int r = SSL_shutdown(cli); /* 0: close_notify sent (the peer's is not awaited) */
          if (r >= 0) closed = 1; else want = tls_want(cli, r);
        }
        tls_end_want(ep, &wend, closed ? 0 : want);
      } else {
        for (;;) {
          int r = SSL_read(srv, in, CHUNK);
          if (r > 0) { got += r; continue; }
          if (SSL_get_error(srv, r) == SSL_ERROR_ZERO_RETURN) { eof = 1; break; }
          tls_end_want(ep, &rend, tls_want(srv, r));
          break;
        }
      }
    }
  }
  double dt = now() - t0;
  CHECK(sent == total && got == total);
  SSL_free(cli);
  SSL_free(srv);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  printf("%.6g\n", mib / dt);
  return 0;
}
