/* pump sink | pump source PORT MIB | pump bursts PORT BURSTS CONNS |
 * pump time FILE CMD... | pump http PORT CONNS REQUESTS |
 * pump forward PORT | pump direct PORT: the outside ends of the proxy and
 * memory rows, in C so that they cost the measured process nothing, the
 * proxy's CPU, a fixed number of HTTP requests (to count a server's
 * instructions per request under callgrind), and the proxy row's two
 * references.
 *   sink: listens on a free loopback port, prints it, accepts one
 *     connection, reads it to the end, prints MiB/s from the first byte.
 *   source: connects to PORT and writes MIB MiB, then closes.
 *   The two ends of the proxy row copy no byte through user space: the
 *   source sends 1 MiB of a memory file over and over with sendfile, the
 *   sink discards with recv(MSG_TRUNC) (TCP drops the bytes unread). On
 *   this two-core machine the three processes share the CPUs: ends that
 *   copy every byte spent the time a splice forwarder saves, and its rate
 *   read the same as a forwarder copying twice. What the ends cost now is
 *   the kernel's TCP, the same for every forwarder measured.
 *   bursts: BURSTS times, opens CONNS connections to PORT at once, sends a
 *     line on each, reads its echo, closes them all.
 *   time: runs CMD, passing on the signals that stop it (the bench stops
 *     processes by PID: this one's), and writes the user and system CPU
 *     seconds it used (its rusage, microseconds) to FILE; exits as it did.
 *   http: REQUESTS keep-alive GETs of / (as wrk sends them) over CONNS
 *     connections, one outstanding on each; a response is counted by its
 *     status line.
 *   forward: the C floor of a splice proxy, as bench/proxy/LIB.lua is run:
 *     prints its port, takes one connection, connects to PORT and moves
 *     everything with splice(2) through a 1 MiB pipe, blocking; then exits.
 *   direct: no forwarder at all: prints PORT and exits, so the source
 *     connects straight to the sink. Its rate is what the ends and the
 *     loopback TCP allow with nothing between them: what the forwarders'
 *     rates are read against. */
#include "common.h"
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/wait.h>

#define CHUNK 65536
#define SOURCE_CHUNKS 16 /* the source's memory file: 1 MiB */

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
  return fd;
}

static pid_t child;

static void pass_on(int sig) { kill(child, sig); }

/* `time`: CMD's own CPU, as the kernel accounted it when it was reaped. */
static int run_timed(const char *file, char **cmd) {
  child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    execvp(cmd[0], cmd);
    _exit(127);
  }
  signal(SIGTERM, pass_on);
  signal(SIGINT, pass_on);
  signal(SIGHUP, pass_on);
  int status;
  struct rusage usage;
  while (wait4(child, &status, 0, &usage) < 0) CHECK(errno == EINTR);
  FILE *out = fopen(file, "w");
  CHECK(out != NULL);
  fprintf(out, "%.6f %.6f\n", usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6,
          usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6);
  CHECK(fclose(out) == 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* `http`: the requests wrk would send, a fixed number of them. */
static int run_http(int port, int conns, long total) {
  char request[128], in[CHUNK];
  int length = snprintf(request, sizeof request, "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", port);
  struct pollfd *fds = calloc((size_t)conns, sizeof *fds);
  CHECK(fds != NULL);
  long sent = 0, answered = 0;
  for (int i = 0; i < conns; i++) {
    fds[i].fd = connect_to(port);
    fds[i].events = POLLIN;
    if (sent < total) { CHECK(write(fds[i].fd, request, (size_t)length) == length); sent++; }
  }
  while (answered < total) {
    CHECK(poll(fds, (nfds_t)conns, WAIT_MS) > 0);
    for (int i = 0; i < conns; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      ssize_t r = read(fds[i].fd, in, sizeof in);
      CHECK(r > 0);
      for (char *at = in; (at = memmem(at, (size_t)(in + r - at), "HTTP/1.1 ", 9)) != NULL; at += 9) {
        answered++;
        if (sent < total) { CHECK(write(fds[i].fd, request, (size_t)length) == length); sent++; }
      }
    }
  }
  for (int i = 0; i < conns; i++) close(fds[i].fd);
  return 0;
}

/* `forward`: socket -> pipe -> socket with splice, both sockets blocking;
 * what one call takes from the client, the next calls give on whole. */
static int run_forward(int port) {
  struct sockaddr_in addr;
  int lst = tcp_listener(&addr);
  CHECK(fcntl(lst, F_SETFL, 0) == 0);
  printf("%d\n", ntohs(addr.sin_port));
  fflush(stdout);
  int from = accept4(lst, NULL, NULL, SOCK_CLOEXEC);
  CHECK(from >= 0);
  int to = connect_to(port);
  int pipe_ends[2];
  CHECK(pipe2(pipe_ends, O_CLOEXEC) == 0);
  (void)fcntl(pipe_ends[1], F_SETPIPE_SZ, 1 << 20); /* as xpio.splice's pipe; 64 KiB if refused */
  for (;;) {
    ssize_t taken = splice(from, NULL, pipe_ends[1], NULL, 1 << 20, SPLICE_F_MOVE);
    CHECK(taken >= 0);
    if (taken == 0) break;
    while (taken > 0) {
      ssize_t given = splice(pipe_ends[0], NULL, to, NULL, (size_t)taken, SPLICE_F_MOVE);
      CHECK(given > 0);
      taken -= given;
    }
  }
  close(to);
  close(from);
  return 0;
}

int main(int argc, char **argv) {
  static char buffer[CHUNK];
  if (argc >= 2 && strcmp(argv[1], "sink") == 0) {
    struct sockaddr_in addr;
    int lst = tcp_listener(&addr);
    CHECK(fcntl(lst, F_SETFL, 0) == 0);   /* a blocking accept: one connection, nothing else to do */
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    int fd = accept(lst, NULL, NULL);
    CHECK(fd >= 0);
    long long got = 0;
    double t0 = 0;
    for (;;) {
      ssize_t r = recv(fd, buffer, sizeof buffer, MSG_TRUNC);
      CHECK(r >= 0);
      if (r == 0) break;
      if (got == 0) t0 = now();
      got += r;
    }
    printf("%.6g\n", (double)got / 1048576.0 / (now() - t0));
    fprintf(stderr, "sink: %lld bytes\n", got);
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "source") == 0) {
    int fd = connect_to(atoi(argv[2]));
    long long left = atoll(argv[3]) << 20;
    memset(buffer, 'p', sizeof buffer);
    int file = memfd_create("pump-source", MFD_CLOEXEC);
    CHECK(file >= 0);
    for (int i = 0; i < SOURCE_CHUNKS; i++) CHECK(write(file, buffer, CHUNK) == CHUNK);
    while (left > 0) {
      off_t at = 0;
      long long want = left < SOURCE_CHUNKS * CHUNK ? left : SOURCE_CHUNKS * CHUNK;
      ssize_t w = sendfile(fd, file, &at, (size_t)want);
      CHECK(w > 0);
      left -= w;
    }
    close(fd);
    return 0;
  }
  if (argc >= 5 && strcmp(argv[1], "bursts") == 0) {
    int port = atoi(argv[2]), bursts = atoi(argv[3]), conns = atoi(argv[4]);
    int *fds = calloc((size_t)conns, sizeof *fds);
    CHECK(fds != NULL);
    for (int b = 0; b < bursts; b++) {
      for (int i = 0; i < conns; i++) fds[i] = connect_to(port);
      for (int i = 0; i < conns; i++) CHECK(write(fds[i], "ping\n", 5) == 5);
      for (int i = 0; i < conns; i++) {
        size_t have = 0;
        while (have < 5) {
          ssize_t r = read(fds[i], buffer + have, 5 - have);
          CHECK(r > 0);
          have += (size_t)r;
        }
        close(fds[i]);
      }
    }
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "forward") == 0) return run_forward(atoi(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "direct") == 0) {
    printf("%d\n", atoi(argv[2]));
    return 0;
  }
  if (argc >= 4 && strcmp(argv[1], "time") == 0) return run_timed(argv[2], argv + 3);
  if (argc >= 5 && strcmp(argv[1], "http") == 0) return run_http(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
  fprintf(stderr, "usage: pump sink | source PORT MIB | bursts PORT BURSTS CONNS | time FILE CMD... | http PORT CONNS REQUESTS | forward PORT | direct PORT\n");
  return 2;
}
