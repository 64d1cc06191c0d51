/* bulk MIB: MIB MiB over TCP loopback, 64 KiB writes and reads, one epoll
 * loop. Prints MiB/s. */
#include "common.h"

#define CHUNK 65536

int main(int argc, char **argv) {
  long mib = arg_long(argc, argv, 1, 64);
  long long total = (long long)mib << 20, sent = 0, got = 0;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in addr;
  int lst = tcp_listener(&addr), cli, srv;
  tcp_pair(ep, lst, &addr, &cli, &srv);
  static char out[CHUNK], in[CHUNK];
  memset(out, 'x', sizeof out);
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = cli};
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, cli, &ev) == 0);
  ev = (struct epoll_event){.events = EPOLLIN, .data.fd = srv};
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev) == 0);
  int eof = 0;
  double t0 = now();
  while (!eof) {
    struct epoll_event evs[2];
    int k = epoll_wait(ep, evs, 2, WAIT_MS);
    CHECK(k > 0);
    for (int e = 0; e < k; e++) {
      if (evs[e].data.fd == cli) {
        while (sent < total) {
          size_t want = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
          ssize_t w = write(cli, out, want);
          if (w < 0) { CHECK(errno == EAGAIN); break; }
          sent += w;
        }
        if (sent == total) {
          CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, cli, NULL) == 0);
          CHECK(shutdown(cli, SHUT_WR) == 0);
        }
      } else {
        for (;;) {
          ssize_t r = read(srv, in, CHUNK);
          if (r < 0) { CHECK(errno == EAGAIN); break; }
          if (r == 0) { eof = 1; break; }
          got += r;
        }
      }
    }
  }
  double dt = now() - t0;
  CHECK(got == total);
  printf("%.6g\n", mib / dt);
  return 0;
}
