/* Shared helpers for the C floor: the same work as the Lua workloads, no Lua. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond) \
  do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s (%s)\n", \
                              __FILE__, __LINE__, #cond, strerror(errno)); exit(1); } } while (0)

#define WAIT_MS 10000 /* every wait is bounded */

static inline double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline long arg_long(int argc, char **argv, int i, long dflt) {
  return i < argc ? atol(argv[i]) : dflt;
}

/* A listening TCP socket on 127.0.0.1, any port; its address in *addr. */
static inline int tcp_listener(struct sockaddr_in *addr) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  CHECK(s >= 0);
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(s, (struct sockaddr *)addr, sizeof *addr) == 0);
  CHECK(listen(s, 128) == 0);
  socklen_t len = sizeof *addr;
  CHECK(getsockname(s, (struct sockaddr *)addr, &len) == 0);
  return s;
}

/* Wait (bounded) until fd has `events` ready. */
static inline void wait_fd(int ep, int fd, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd}, out;
  CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
  CHECK(epoll_wait(ep, &out, 1, WAIT_MS) == 1);
  CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) == 0);
}

/* A connected non-blocking TCP pair over loopback: *client and *server. */
static inline void tcp_pair(int ep, int listener, const struct sockaddr_in *addr, int *client, int *server) {
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  CHECK(c >= 0);
  int r = connect(c, (const struct sockaddr *)addr, sizeof *addr);
  CHECK(r == 0 || errno == EINPROGRESS);
  int a;
  while ((a = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
    CHECK(errno == EAGAIN);
    wait_fd(ep, listener, EPOLLIN);
  }
  r = connect(c, (const struct sockaddr *)addr, sizeof *addr);
  if (r != 0 && errno != EISCONN) {
    CHECK(errno == EALREADY || errno == EINPROGRESS);
    wait_fd(ep, c, EPOLLOUT);
    r = connect(c, (const struct sockaddr *)addr, sizeof *addr);
    CHECK(r == 0 || errno == EISCONN);
  }
  *client = c;
  *server = a;
}

static inline void nodelay(int fd) {
  int one = 1;
  CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0);
}
#endif
