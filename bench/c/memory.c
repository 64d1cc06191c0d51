/* memory N: RSS growth per idle connected socket pair (AF_UNIX socketpair,
 * both ends registered for read in epoll). Prints bytes per pair. */
#include "common.h"

static long rss(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  CHECK(f != NULL);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  CHECK(kib >= 0);
  return kib * 1024;
}

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 1000);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  long before = rss();
  for (long i = 0; i < n; i++) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    for (int j = 0; j < 2; j++) {
      struct epoll_event ev = {.events = EPOLLIN, .data.fd = sv[j]};
      CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, sv[j], &ev) == 0);
    }
  }
  struct epoll_event ev;
  CHECK(epoll_wait(ep, &ev, 1, 0) == 0); /* all idle */
  long after = rss();
  printf("%.6g\n", (double)(after - before) / n);
  return 0;
}
