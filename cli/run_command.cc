#include "cli/run_command.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace rgpu::cli {
namespace {

constexpr size_t kMaxTokenBytes = 4096;

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Result<std::string> ReadToken(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Status::Errno(Code::kInvalid, "token file " + file, errno);
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::Errno(Code::kInvalid, "token file " + file, errno);
  while (!token.empty() && isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) return Status::Invalid("token file " + file + " is empty");
  if (token.size() > kMaxTokenBytes) {
    return Status::Invalid("token file " + file + " holds more than " +
                           std::to_string(kMaxTokenBytes) + " bytes");
  }
  if (token.find_first_of("\r\n") != std::string::npos || token.find('\0') != std::string::npos) {
    return Status::Invalid("token file " + file + " must hold one line");
  }
  return token;
}

}  // namespace

Result<std::string> ClientLibDir() {
  std::string dir;
  const char* env = getenv("RGPU_CLIENT_LIB_DIR");
  if (env != nullptr && *env != 0) {
    dir = env;
  } else {
    char exe[PATH_MAX];
    if (::realpath("/proc/self/exe", exe) == nullptr) {
      return Status::Errno(Code::kInternal, "realpath /proc/self/exe", errno);
    }
    dir = DirName(exe) + "/../lib";
  }
  char buf[PATH_MAX];
  if (::realpath(dir.c_str(), buf) == nullptr) {
    return Status::Errno(Code::kInvalid, "client library dir " + dir, errno);
  }
  std::string real = buf;
  struct stat st;
  std::string lib = real + "/libcuda.so.1";
  if (::stat(lib.c_str(), &st) != 0) {
    return Status::Errno(Code::kInvalid,
                         lib + " (rgpu's client library; build it, or set RGPU_CLIENT_LIB_DIR)",
                         errno);
  }
  return real;
}

Status CheckServerAddress(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Status::Invalid("server address '" + address + "' is not HOST:PORT");
  }
  std::string port = address.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return Status::Invalid("server address '" + address + "': port must be 1..65535");
  }
  return Status();
}

Result<std::map<std::string, std::string>> RunEnvironment(
    const RunOptions& options, const std::string& lib_dir,
    const std::map<std::string, std::string>& current) {
  std::map<std::string, std::string> env;
  if (!options.server.empty()) {
    if (Status s = CheckServerAddress(options.server); !s.ok()) return s;
    env["RGPU_SERVER"] = options.server;
  } else if (auto it = current.find("RGPU_SERVER"); it == current.end() || it->second.empty()) {
    env["RGPU_SERVER"] = kDefaultServer;
  }
  if (!options.token_file.empty()) {
    Result<std::string> token = ReadToken(options.token_file);
    if (!token.ok()) return token.take_status();
    env["RGPU_TOKEN"] = token.value();
  }
  std::string path = lib_dir;
  if (auto it = current.find("LD_LIBRARY_PATH"); it != current.end() && !it->second.empty()) {
    path += ":" + it->second;
  }
  env["LD_LIBRARY_PATH"] = path;
  env["TRITON_LIBCUDA_PATH"] = lib_dir;
  return env;
}

int ExecRun(const RunOptions& options) {
  if (options.command.empty()) {
    fprintf(stderr, "rgpu run: no command given (usage: rgpu run [OPTIONS] -- CMD ARGS...)\n");
    return 2;
  }
  Result<std::string> lib_dir = ClientLibDir();
  if (!lib_dir.ok()) {
    fprintf(stderr, "rgpu run: %s\n", lib_dir.status().message().c_str());
    return 2;
  }
  std::map<std::string, std::string> current;
  for (const char* name : {"RGPU_SERVER", "LD_LIBRARY_PATH"}) {
    if (const char* v = getenv(name)) current[name] = v;
  }
  auto env = RunEnvironment(options, lib_dir.value(), current);
  if (!env.ok()) {
    fprintf(stderr, "rgpu run: %s\n", env.status().message().c_str());
    return 2;
  }
  for (const auto& [name, value] : env.value()) {
    if (setenv(name.c_str(), value.c_str(), 1) != 0) {
      fprintf(stderr, "rgpu run: setenv %s: %s\n", name.c_str(), strerror(errno));
      return 2;
    }
  }
  std::vector<char*> argv;
  for (const std::string& a : options.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  fflush(nullptr);
  execvp(argv[0], argv.data());
  int err = errno;
  fprintf(stderr, "rgpu run: cannot run '%s': %s\n", argv[0], strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace rgpu::cli
