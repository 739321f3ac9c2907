#include "server/server_main.h"

int main(int argc, char** argv) { return rgpu::server::ServerMain(argc, argv); }
