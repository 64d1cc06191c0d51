/* accept N: connect, accept and close N TCP loopback connections one after
 * another. Prints conn/s. */
#include "common.h"

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 1000), done = 0;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct sockaddr_in addr;
  int lst = tcp_listener(&addr);
  double t0 = now();
  for (long i = 0; i < n; i++) {
    int c, a;
    tcp_pair(ep, lst, &addr, &c, &a);
    CHECK(close(a) == 0 && close(c) == 0);
    done++;
  }
  double dt = now() - t0;
  CHECK(done == n);
  printf("%.6g\n", n / dt);
  return 0;
}
