/* micro N: the system calls under bench/micro.lua's calls, alone, in ns per
 * call: read at EAGAIN, 1-byte read, 1-byte write (AF_UNIX socket pairs),
 * epoll_wait(0) with 1 and with 64 ready descriptors. Prints "id ns" lines
 * with the ids micro.lua uses. What the two Lua bindings add is their time
 * over these. */
#include "common.h"

static void pair(int sv[2]) {
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
}

/* Writes until the socket takes no more; the bytes written. */
static long fill(int fd) {
  static char big[65536];
  long filled = 0;
  ssize_t w;
  while ((w = write(fd, big, sizeof big)) > 0) filled += w;
  CHECK(errno == EAGAIN);
  return filled;
}

static long drain(int fd) {
  static char buf[65536];
  long got = 0;
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0) got += r;
  CHECK(r < 0 && errno == EAGAIN);
  return got;
}

static double read_eagain(long n) {
  int sv[2];
  char byte;
  pair(sv);
  double t0 = now();
  for (long i = 0; i < n; i++) CHECK(read(sv[1], &byte, 1) < 0);
  double dt = now() - t0;
  close(sv[0]);
  close(sv[1]);
  return dt;
}

static double read_byte(long n) {
  int sv[2];
  char byte;
  double dt = 0;
  pair(sv);
  for (long done = 0; done < n;) {
    long filled = fill(sv[0]), m = filled < n - done ? filled : n - done;
    double t0 = now();
    for (long i = 0; i < m; i++) CHECK(read(sv[1], &byte, 1) == 1);
    dt += now() - t0;
    CHECK(drain(sv[1]) == filled - m);
    done += m;
  }
  close(sv[0]);
  close(sv[1]);
  return dt;
}

static double write_byte(long n) {
  int sv[2];
  long room = 0;
  double dt = 0;
  pair(sv);
  while (write(sv[0], "x", 1) == 1) room++;
  drain(sv[1]);
  long batch = room / 2 > 0 ? room / 2 : 1;
  for (long done = 0; done < n;) {
    long m = batch < n - done ? batch : n - done;
    double t0 = now();
    for (long i = 0; i < m; i++) CHECK(write(sv[0], "x", 1) == 1);
    dt += now() - t0;
    CHECK(drain(sv[1]) == m);
    done += m;
  }
  close(sv[0]);
  close(sv[1]);
  return dt;
}

/* epoll_wait(0) over `width` readable descriptors, registered once. */
static double wait_ready(long n, int width) {
  int ep = epoll_create1(EPOLL_CLOEXEC), fds[64][2];
  struct epoll_event evs[64];
  CHECK(ep >= 0 && width <= 64);
  for (int i = 0; i < width; i++) {
    pair(fds[i]);
    CHECK(write(fds[i][0], "x", 1) == 1);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fds[i][1]};
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fds[i][1], &ev) == 0);
  }
  double t0 = now();
  for (long i = 0; i < n; i++) CHECK(epoll_wait(ep, evs, 64, 0) == width);
  double dt = now() - t0;
  for (int i = 0; i < width; i++) {
    close(fds[i][0]);
    close(fds[i][1]);
  }
  close(ep);
  return dt;
}

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 100000);
  CHECK(n > 0);
  printf("read_eagain %.6g\n", read_eagain(n) / n * 1e9);
  printf("read_byte %.6g\n", read_byte(n) / n * 1e9);
  printf("write_byte %.6g\n", write_byte(n) / n * 1e9);
  printf("wait1 %.6g\n", wait_ready(n, 1) / n * 1e9);
  long wide = n / 64 > 0 ? n / 64 : 1;
  printf("wait64 %.6g\n", wait_ready(wide, 64) / wide * 1e9);
  return 0;
}
