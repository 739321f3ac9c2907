#include "bench/tls_server.h"

#include <unistd.h>

#include <cerrno>

#include "common/tls_cert.h"

namespace rgpu::bench {

Result<std::unique_ptr<TlsServer>> TlsServer::Start(std::vector<std::string> argv, double timeout_s) {
  std::unique_ptr<TlsServer> t(new TlsServer());
  char tmpl[] = "/tmp/rgpu-bench-tls-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Status::Errno(Code::kInternal, "mkdtemp", errno);
  t->dir_ = tmpl;
  Result<tls::TestPki> pki = tls::MakeTestPki(t->dir_, {"localhost", "127.0.0.1"});
  if (!pki.ok()) return pki.take_status();
  t->ca_ = pki->ca_cert;
  argv.insert(argv.end(), {"--tls-cert", pki->server_cert, "--tls-key", pki->server_key});
  Result<std::unique_ptr<Server>> s = Server::Start(argv, timeout_s);
  if (!s.ok()) return s.take_status();
  t->server_ = std::move(*s);
  return t;
}

TlsServer::~TlsServer() {
  server_.reset();  // stopped before its key goes
  if (dir_.empty()) return;
  for (const char* f : {"/ca.pem", "/server.pem", "/server.key"}) unlink((dir_ + f).c_str());
  rmdir(dir_.c_str());
}

std::map<std::string, std::string> TlsServer::ClientEnv() const {
  return {{"RGPU_TLS", "1"}, {"RGPU_TLS_CA", ca_}};
}

}  // namespace rgpu::bench
