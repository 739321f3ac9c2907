// The entry point of the rgpu server, shared by `rgpu-server ARGS...` and
// `rgpu server ARGS...` (cli/main.cc). The server (supervisor and workers)
// defines it in target rgpu_server_lib.
#pragma once

namespace rgpu::server {

// Runs the server with command-line arguments as main() receives them
// (argv[0] is the program name). Returns the process exit status.
int ServerMain(int argc, char** argv);

}  // namespace rgpu::server
