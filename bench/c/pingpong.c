/* pingpong N K: N one-byte round trips over TCP loopback through one epoll
 * loop, with K idle descriptors also registered for read. Prints round trips/s. */
#include "common.h"

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 10000), idle = arg_long(argc, argv, 2, 0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  CHECK(ep >= 0);
  struct sockaddr_in addr;
  int lst = tcp_listener(&addr), cli, srv;
  tcp_pair(ep, lst, &addr, &cli, &srv);
  nodelay(cli);
  nodelay(srv);
  for (long i = 0; i < idle / 2; i++) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    for (int j = 0; j < 2; j++) {
      struct epoll_event ev = {.events = EPOLLIN, .data.fd = sv[j]};
      CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[j], &ev) == 0);
    }
  }
  int fds[2] = {cli, srv};
  for (int j = 0; j < 2; j++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[j]};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[j], &ev) == 0);
  }
  long count = 0;
  char byte = 'x';
  double t0 = now();
  CHECK(write(cli, &byte, 1) == 1);
  while (count < n) {
    struct epoll_event evs[8];
    int k = epoll_wait(ep, evs, 8, WAIT_MS);
    CHECK(k > 0);
    for (int e = 0; e < k; e++) {
      int fd = evs[e].data.fd;
      CHECK(fd == cli || fd == srv); /* idle descriptors never wake */
      CHECK(read(fd, &byte, 1) == 1);
      if (fd == srv) {
        CHECK(write(srv, &byte, 1) == 1);
      } else if (++count < n) {
        CHECK(write(cli, &byte, 1) == 1);
      }
    }
  }
  double dt = now() - t0;
  printf("%.6g\n", n / dt);
  return 0;
}
