// Throwaway certificates for tests and `rgpu bench`: a fresh CA and a server
// certificate it signs (P-256 keys, SHA-256), written as PEM files. Nothing
// here is for production use: real servers are given their certificate and
// key by the operator (--tls-cert/--tls-key).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::tls {

struct TestPki {
  std::string ca_cert;      // DIR/ca.pem: the CA clients trust (RGPU_TLS_CA)
  std::string server_cert;  // DIR/server.pem: the leaf alone (--tls-cert)
  std::string server_key;   // DIR/server.key, mode 0600 (--tls-key)
};

// Creates a CA and a server certificate naming `names` (DNS names or IP
// addresses, e.g. {"localhost", "127.0.0.1"}) valid from an hour ago for a
// day, and writes them under `dir` (which must exist). Each call makes a
// new CA: a client trusting another call's CA rejects this server.
Result<TestPki> MakeTestPki(const std::string& dir, const std::vector<std::string>& names);

}  // namespace rgpu::tls
