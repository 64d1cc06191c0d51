/* tls_handshake N [DIR]: N TLS 1.3 connections over TCP loopback, one after
 * another, each end in one epoll loop: connect, accept, both handshakes
 * (the client verifying the server's chain against DIR/ca.pem and its name),
 * close_notify from both (not awaited) and close. No resumption: every
 * handshake is a full one. Prints handshakes/s. */
#include "tls_common.h"

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 100), done = 0;
  const char *dir = tls_dir(argc, argv, 2);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in addr;
  int lst = tcp_listener(&addr);
  SSL_CTX *cctx = tls_client_ctx(dir), *sctx = tls_server_ctx(dir);
  double t0 = now();
  for (long i = 0; i < n; i++) {
    int cfd, sfd;
    tcp_pair(ep, lst, &addr, &cfd, &sfd);
    SSL *cli = tls_client(cctx, cfd), *srv = tls_server(sctx, sfd);
    tls_handshake_pair(ep, cli, srv);
    tls_check_pair(cli, srv);
    TLS_CHECK(SSL_session_reused(cli) == 0);
    SSL_shutdown(cli);
    SSL_shutdown(srv);
    SSL_free(cli);
    SSL_free(srv);
    CHECK(close(cfd) == 0 && close(sfd) == 0);
    done++;
  }
  double dt = now() - t0;
  CHECK(done == n);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  printf("%.6g\n", n / dt);
  return 0;
}
