// `rgpu run`: run a program against a remote GPU.
//
// The program is exec'd (rgpu does not stay around) with an environment in
// which the dynamic linker finds rgpu's client as libcuda.so.1:
//   RGPU_SERVER          --server when given; else kept; else kDefaultServer
//   RGPU_TOKEN           the contents of --token-file (trailing whitespace
//                        dropped) when given; else kept
//   LD_LIBRARY_PATH      the client library dir, prepended
//   TRITON_LIBCUDA_PATH  the client library dir (Triton dlopens libcuda by path)
// The client library dir is $RGPU_CLIENT_LIB_DIR when set, else
// <dir of the rgpu binary>/../lib, realpath'd; it must hold libcuda.so.1.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::cli {

inline constexpr char kDefaultServer[] = "127.0.0.1:7070";

struct RunOptions {
  std::string server;                // empty: keep $RGPU_SERVER or use the default
  std::string token_file;            // empty: keep $RGPU_TOKEN
  std::vector<std::string> command;  // CMD ARGS...; must not be empty
};

// The directory holding rgpu's client libcuda.so.1 (see above). Fails with a
// message naming the directory when it or its libcuda.so.1 is missing.
Result<std::string> ClientLibDir();

// Checks HOST:PORT (HOST non-empty, PORT 1..65535; [v6]:PORT allowed).
Status CheckServerAddress(const std::string& address);

// The variables to set for the child, given the current values of the ones
// it reads (`current`, by name; absent means unset). Reads --token-file.
Result<std::map<std::string, std::string>> RunEnvironment(
    const RunOptions& options, const std::string& lib_dir,
    const std::map<std::string, std::string>& current);

// Sets up the environment and execvp's options.command. Returns only on
// failure, with the exit status to use (2: usage or setup, 126: cannot
// execute, 127: not found), after printing why to stderr.
int ExecRun(const RunOptions& options);

}  // namespace rgpu::cli
