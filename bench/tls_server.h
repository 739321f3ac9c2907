// The server behind rgpu bench's TLS rows: the same rgpu-server command the
// bench started, plus --tls-cert/--tls-key of a throwaway CA and certificate
// (common/tls_cert.h) made in a temporary directory. Stopping it removes
// the directory. Its clients verify it like any other (RGPU_TLS_CA).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench/subprocess.h"
#include "common/status.h"

namespace rgpu::bench {

class TlsServer {
 public:
  // `argv` as for Server::Start, without TLS flags.
  static Result<std::unique_ptr<TlsServer>> Start(std::vector<std::string> argv, double timeout_s);
  ~TlsServer();
  TlsServer(const TlsServer&) = delete;
  TlsServer& operator=(const TlsServer&) = delete;

  std::string address() const { return server_->address(); }
  // RGPU_TLS=1 and RGPU_TLS_CA for a child of the bench.
  std::map<std::string, std::string> ClientEnv() const;

 private:
  TlsServer() = default;
  std::string dir_;
  std::string ca_;
  std::unique_ptr<Server> server_;
};

}  // namespace rgpu::bench
