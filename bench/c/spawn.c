/* spawn N [pipes]: posix_spawn /bin/true and wait for it, N times; with
 * `pipes`, the child's stdin and stdout are pipes (stdout read to EOF).
 * Prints spawns/s. */
#include "common.h"
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
  long n = arg_long(argc, argv, 1, 100), ok = 0;
  int pipes = argc > 2 && strcmp(argv[2], "pipes") == 0;
  char *args[] = {"/bin/true", NULL};
  double t0 = now();
  for (long i = 0; i < n; i++) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int in[2], out[2];
    if (pipes) {
      CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
      posix_spawn_file_actions_adddup2(&fa, in[0], 0);
      posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    }
    pid_t pid;
    CHECK(posix_spawn(&pid, args[0], &fa, NULL, args, environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    if (pipes) {
      char buf[64];
      CHECK(close(in[0]) == 0 && close(out[1]) == 0 && close(in[1]) == 0);
      CHECK(read(out[0], buf, sizeof buf) == 0); /* EOF: /bin/true writes nothing */
      CHECK(close(out[0]) == 0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
  }
  double dt = now() - t0;
  CHECK(ok == n);
  printf("%.6g\n", n / dt);
  return 0;
}
