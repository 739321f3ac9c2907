// A program that holds a GPU and starts a helper process which also uses
// CUDA (as torch.compile's workers do) and waits for it: the helper must
// share its parent's lease, not queue behind it forever.
#include <cuda_runtime.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

static int UseGpu(const char* who) {
  void* d = nullptr;
  int v = 7, back = 0;
  if (cudaMalloc(&d, 4) != cudaSuccess || cudaMemcpy(d, &v, 4, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(&back, d, 4, cudaMemcpyDeviceToHost) != cudaSuccess || back != 7) {
    printf("%s: CUDA failed\n", who);
    return 1;
  }
  printf("%s: ok\n", who);
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0) return UseGpu("child");
  if (UseGpu("parent") != 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    execl("/proc/self/exe", argv[0], "child", (char*)nullptr);
    _exit(127);
  }
  for (int i = 0; i < 400; ++i) {  // 20 s at most
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
      return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
    }
    usleep(50000);
  }
  printf("child still waiting after 20 s\n");
  kill(pid, SIGKILL);
  return 1;
}
