/* loadcost RUNS LUA MODULE: the added cost, in ms, of `require "MODULE"`
 * over a bare `LUA -e ''`: the difference of the medians of RUNS timed runs
 * of each, interleaved. Every run must exit 0. */
#include "common.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

static double run(char **args) {
  pid_t pid;
  int status;
  double t0 = now();
  CHECK(posix_spawnp(&pid, args[0], NULL, NULL, args, environ) == 0);
  CHECK(waitpid(pid, &status, 0) == pid);
  double dt = now() - t0;
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return dt;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  CHECK(argc == 4);
  int runs = atoi(argv[1]);
  CHECK(runs > 0);
  char code[256];
  snprintf(code, sizeof code, "assert(require(\"%s\"))", argv[3]);
  char *bare[] = {argv[2], "-e", "", NULL};
  char *load[] = {argv[2], "-e", code, NULL};
  double *tb = calloc(runs, sizeof *tb), *tl = calloc(runs, sizeof *tl);
  CHECK(tb && tl);
  for (int i = 0; i < runs; i++) {
    tb[i] = run(bare);
    tl[i] = run(load);
  }
  printf("%.6g\n", (median(tl, runs) - median(tb, runs)) * 1000);
  return 0;
}
