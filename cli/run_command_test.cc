// Tests of `rgpu run`'s environment and of the rgpu binary's subcommands.
#include "cli/run_command.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace rgpu::cli {
namespace {

namespace fs = std::filesystem;

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    static int n = 0;
    path_ = fs::temp_directory_path() /
            ("rgpu_cli_test_" + std::to_string(getpid()) + "_" + std::to_string(n++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
    return (path_ / name).string();
  }

 private:
  fs::path path_;
};

// Runs a shell command line; returns its stdout+stderr and sets *status to
// the exit status.
std::string Shell(const std::string& command, int* status) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int raw = pclose(p);
  *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return out;
}

const std::string kRgpu = RGPU_BINARY;

TEST(RunEnvironmentTest, DefaultsAndPrepends) {
  RunOptions o{.command = {"true"}};
  auto env = RunEnvironment(o, "/opt/rgpu/lib", {{"LD_LIBRARY_PATH", "/a:/b"}});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env.value()["RGPU_SERVER"], "127.0.0.1:7070");
  EXPECT_EQ(env.value()["LD_LIBRARY_PATH"], "/opt/rgpu/lib:/a:/b");
  EXPECT_EQ(env.value()["TRITON_LIBCUDA_PATH"], "/opt/rgpu/lib");
  EXPECT_EQ(env.value().count("RGPU_TOKEN"), 0u);
}

TEST(RunEnvironmentTest, KeepsServerFromEnvironmentUnlessGiven) {
  RunOptions o{.command = {"true"}};
  auto kept = RunEnvironment(o, "/l", {{"RGPU_SERVER", "gpu1:9000"}});
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept.value().count("RGPU_SERVER"), 0u);  // left as it is
  EXPECT_EQ(kept.value()["LD_LIBRARY_PATH"], "/l");

  o.server = "gpu2:7071";
  auto given = RunEnvironment(o, "/l", {{"RGPU_SERVER", "gpu1:9000"}});
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given.value()["RGPU_SERVER"], "gpu2:7071");
}

TEST(RunEnvironmentTest, ReadsTokenFile) {
  TempDir dir;
  RunOptions o{.token_file = dir.Write("token", "s3cret\n"), .command = {"true"}};
  auto env = RunEnvironment(o, "/l", {});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(env.value()["RGPU_TOKEN"], "s3cret");

  o.token_file = dir.Write("empty", "\n");
  auto empty = RunEnvironment(o, "/l", {});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("is empty"), std::string::npos);

  o.token_file = (dir.path() / "missing").string();
  auto missing = RunEnvironment(o, "/l", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing: No such file"), std::string::npos)
      << missing.status().message();

  o.token_file = dir.Write("two", "a\nb\n");
  EXPECT_FALSE(RunEnvironment(o, "/l", {}).ok());
}

TEST(RunEnvironmentTest, ChecksServerAddress) {
  EXPECT_TRUE(CheckServerAddress("127.0.0.1:7070").ok());
  EXPECT_TRUE(CheckServerAddress("gpu-host.example:1").ok());
  EXPECT_TRUE(CheckServerAddress("[::1]:65535").ok());
  for (const char* bad : {"", "host", "host:", ":7070", "host:0", "host:65536", "host:x1",
                          "host:123456"}) {
    EXPECT_FALSE(CheckServerAddress(bad).ok()) << bad;
  }
}

TEST(RgpuBinaryTest, PrintsVersionAndProtocol) {
  int status = 0;
  std::string out = Shell(kRgpu + " --version", &status);
  EXPECT_EQ(status, 0);
  // "rgpu 0.1.0 (protocol 1)\n"
  unsigned major = 0, minor = 0, patch = 0, protocol = 0;
  char tail[8] = {};
  ASSERT_EQ(sscanf(out.c_str(), "rgpu %u.%u.%u (protocol %u%7s", &major, &minor, &patch,
                   &protocol, tail),
            5)
      << out;
  EXPECT_STREQ(tail, ")") << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_GE(protocol, 1u);
}

TEST(RgpuBinaryTest, RunExecsWithClientEnvironment) {
  TempDir dir;
  dir.Write("libcuda.so.1", "");  // /usr/bin/env never loads it
  std::string token = dir.Write("token", "tok123\n");
  int status = 0;
  std::string out = Shell("RGPU_CLIENT_LIB_DIR=" + dir.path().string() +
                              " LD_LIBRARY_PATH=/x " + kRgpu + " run --server 10.0.0.5:7000" +
                              " --token-file " + token + " -- /usr/bin/env",
                          &status);
  EXPECT_EQ(status, 0) << out;
  std::string lib = fs::canonical(dir.path()).string();
  EXPECT_NE(out.find("\nRGPU_SERVER=10.0.0.5:7000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nRGPU_TOKEN=tok123\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nLD_LIBRARY_PATH=" + lib + ":/x\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\nTRITON_LIBCUDA_PATH=" + lib + "\n"), std::string::npos) << out;
}

TEST(RgpuBinaryTest, RunWithoutDashDashAndExitStatusPassesThrough) {
  TempDir dir;
  dir.Write("libcuda.so.1", "");
  int status = 0;
  Shell("RGPU_CLIENT_LIB_DIR=" + dir.path().string() + " " + kRgpu + " run sh -c 'exit 7'",
        &status);
  EXPECT_EQ(status, 7);
}

TEST(RgpuBinaryTest, RunErrorsAreClear) {
  TempDir dir;
  int status = 0;
  std::string out = Shell(kRgpu + " run --", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("no command given"), std::string::npos) << out;

  out = Shell("RGPU_CLIENT_LIB_DIR=" + dir.path().string() + " " + kRgpu + " run -- true",
              &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("libcuda.so.1"), std::string::npos) << out;

  dir.Write("libcuda.so.1", "");
  out = Shell("RGPU_CLIENT_LIB_DIR=" + dir.path().string() + " " + kRgpu +
                  " run -- /nonexistent/prog",
              &status);
  EXPECT_EQ(status, 127);
  EXPECT_NE(out.find("cannot run '/nonexistent/prog'"), std::string::npos) << out;

  out = Shell("RGPU_CLIENT_LIB_DIR=" + dir.path().string() + " " + kRgpu +
                  " run --server nohost -- true",
              &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("not HOST:PORT"), std::string::npos) << out;
}

TEST(RgpuBinaryTest, StatusWithoutServerSaysWhy) {
  int status = 0;
  std::string out = Shell(kRgpu + " status --admin-socket /tmp/rgpu-no-such-server.sock", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("cannot reach the server's admin socket"), std::string::npos) << out;
}

TEST(RgpuBinaryTest, NoSubcommandPrintsHelpAndFails) {
  int status = 0;
  std::string out = Shell(kRgpu, &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("run"), std::string::npos) << out;
  out = Shell(kRgpu + " frobnicate", &status);
  EXPECT_NE(status, 0);
}

}  // namespace
}  // namespace rgpu::cli
