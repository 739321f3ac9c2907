// rgpu: the command-line front end.
//   rgpu --version
//   rgpu run [--server HOST:PORT] [--token-file F] -- CMD ARGS...
//   rgpu server ARGS...      (the same as rgpu-server ARGS...)
//   rgpu bench [--server HOST:PORT] [--sim] [--quick] [--json F] [--native-driver P]
//   rgpu status              GPUs, leases, sessions and queue of a local server
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli/bench_command.h"
#include "cli/status_command.h"
#include "cli/rgpu_version.h"
#include "cli/run_command.h"
#include "proto/version.h"
#if RGPU_HAVE_SERVER
#include "server/server_main.h"
#endif

namespace {

std::string VersionLine() {
  return std::string("rgpu ") + RGPU_VERSION_STRING + " (protocol " +
         std::to_string(rgpu::proto::kProtocolVersion) + ")";
}

// `rgpu server ARGS...` hands every argument to the server untouched
// (including --help), so it is dispatched before CLI11 parses anything.
int RunServer(int argc, char** argv) {
#if RGPU_HAVE_SERVER
  return rgpu::server::ServerMain(argc, argv);
#else
  (void)argc;
  (void)argv;
  fprintf(stderr,
          "rgpu server: this rgpu was built without the server (CMake target rgpu_server_lib "
          "did not exist when cli/ was configured); use rgpu-server\n");
  return 2;
#endif
}

// Where `rgpu run`'s command line starts: after a "--", or at the first
// argument that is neither an option nor an option's value. CLI11 (2.1)
// mishandles "--" in a prefix command, so rgpu splits argv itself and CLI11
// parses only the options before the command.
int RunCommandStart(int argc, char** argv, int first) {
  int i = first;
  while (i < argc) {
    if (strcmp(argv[i], "--") == 0) return i;
    if (strcmp(argv[i], "--server") == 0 || strcmp(argv[i], "--token-file") == 0) {
      i += 2;
    } else if (argv[i][0] == '-') {
      ++i;  // --server=X, --help, or an unknown option CLI11 will report
    } else {
      return i;
    }
  }
  return argc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "server") == 0) {
    // argv[1] becomes the server's argv[0].
    static char name[] = "rgpu server";
    argv[1] = name;
    return RunServer(argc - 1, argv + 1);
  }

  CLI::App app{"rgpu: run CUDA programs on a remote GPU", "rgpu"};
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print the version and the protocol version");

  rgpu::cli::RunOptions run_options;
  CLI::App* run = app.add_subcommand("run", "run CMD with its CUDA calls sent to an rgpu server");
  run->add_option("--server", run_options.server,
                  std::string("server HOST:PORT (default: $RGPU_SERVER, else ") +
                      rgpu::cli::kDefaultServer + ")");
  run->add_option("--token-file", run_options.token_file,
                  "file holding the auth token (default: $RGPU_TOKEN)");
  run->footer("usage: rgpu run [--server HOST:PORT] [--token-file F] -- CMD ARGS...");

  app.add_subcommand("server", "start a GPU host server (same as rgpu-server; see rgpu server --help)");
  rgpu::cli::StatusOptions status_options;
  CLI::App* status = app.add_subcommand("status", "show GPUs, leases, sessions and queues of a server on this host");
  status->add_option("--admin-socket", status_options.admin_socket, "the server's admin socket");
  status->add_option("--port", status_options.port, "the server's TCP port (names its default admin socket)")
      ->capture_default_str();
  status->add_flag("--json", status_options.json, "print the server's JSON");
  rgpu::cli::BenchOptions bench_options;
  CLI::App* bench = app.add_subcommand("bench", "measure the link and the GPU through it, side by side with local");
  rgpu::cli::AddBenchOptions(bench, &bench_options);

  // For `rgpu run`, CLI11 sees only the options before CMD (see RunCommandStart).
  int parse_argc = argc;
  if (argc >= 2 && strcmp(argv[1], "run") == 0) {
    parse_argc = RunCommandStart(argc, argv, 2);
    int cmd = parse_argc < argc && strcmp(argv[parse_argc], "--") == 0 ? parse_argc + 1 : parse_argc;
    run_options.command.assign(argv + cmd, argv + argc);
  }
  try {
    app.parse(parse_argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (version) {
    printf("%s\n", VersionLine().c_str());
    return 0;
  }
  if (run->parsed()) return rgpu::cli::ExecRun(run_options);
  if (status->parsed()) return rgpu::cli::RunStatus(status_options);
  if (bench->parsed()) return rgpu::cli::RunBench(bench_options);
  fprintf(stderr, "%s", app.help().c_str());
  return 2;
}
