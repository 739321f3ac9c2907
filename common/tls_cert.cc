#include "common/tls_cert.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "common/tls.h"

namespace rgpu::tls {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(FILE* p) const { fclose(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A certificate for `key` named `cn`, signed by issuer_key (self-signed
// when issuer is null), with the given extensions.
Cert MakeCert(EVP_PKEY* key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
              const std::vector<std::pair<int, std::string>>& exts) {
  Cert cert(X509_new());
  if (!cert) return nullptr;
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("rgpu test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer != nullptr ? issuer : cert.get();
  for (const auto& [nid, value] : exts)
    if (!AddExt(cert.get(), iss, nid, value)) return nullptr;
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return nullptr;
  return cert;
}

Status WritePem(const std::string& path, X509* a, X509* b, EVP_PKEY* key) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, key != nullptr ? 0600 : 0644);
  if (fd < 0) return Status::Errno(Code::kInvalid, "write " + path, errno);
  std::unique_ptr<FILE, Free> f(fdopen(fd, "w"));
  if (!f) {
    close(fd);
    return Status::Errno(Code::kInvalid, "write " + path, errno);
  }
  bool ok = true;
  if (key != nullptr) ok = PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  if (a != nullptr) ok = ok && PEM_write_X509(f.get(), a) == 1;
  if (b != nullptr) ok = ok && PEM_write_X509(f.get(), b) == 1;
  if (!ok || fflush(f.get()) != 0) return Status::Invalid("write " + path + ": " + TakeErrors());
  return {};
}

}  // namespace

Result<TestPki> MakeTestPki(const std::string& dir, const std::vector<std::string>& names) {
  Init();
  ERR_clear_error();
  Key ca_key(EVP_EC_gen("P-256"));
  Key leaf_key(EVP_EC_gen("P-256"));
  if (!ca_key || !leaf_key) return Status::Internal("TLS test PKI: key generation: " + TakeErrors());
  // A unique CA name: verifiers look issuers up by name, and two test CAs
  // with one name would read as a bad signature rather than an unknown CA.
  unsigned char tag[6];
  RAND_bytes(tag, sizeof tag);
  char hex[13];
  for (int i = 0; i < 6; ++i) snprintf(hex + 2 * i, 3, "%02x", tag[i]);
  Cert ca = MakeCert(ca_key.get(), std::string("rgpu test CA ") + hex, nullptr, ca_key.get(),
                     {{NID_basic_constraints, "critical,CA:TRUE"},
                      {NID_key_usage, "critical,keyCertSign,cRLSign"},
                      {NID_subject_key_identifier, "hash"}});
  std::string san;
  for (const std::string& n : names) {
    in6_addr ip;
    bool is_ip = inet_pton(AF_INET, n.c_str(), &ip) == 1 || inet_pton(AF_INET6, n.c_str(), &ip) == 1;
    san += (san.empty() ? "" : ",") + std::string(is_ip ? "IP:" : "DNS:") + n;
  }
  Cert leaf = !ca ? nullptr
                  : MakeCert(leaf_key.get(), names.empty() ? "rgpu" : names[0], ca.get(), ca_key.get(),
                             {{NID_basic_constraints, "critical,CA:FALSE"},
                              {NID_key_usage, "critical,digitalSignature"},
                              {NID_ext_key_usage, "serverAuth"},
                              {NID_subject_alt_name, san}});
  if (!ca || !leaf) return Status::Internal("TLS test PKI: certificate: " + TakeErrors());
  TestPki out{dir + "/ca.pem", dir + "/server.pem", dir + "/server.key"};
  RGPU_RETURN_IF_ERROR(WritePem(out.ca_cert, ca.get(), nullptr, nullptr));
  RGPU_RETURN_IF_ERROR(WritePem(out.server_cert, leaf.get(), nullptr, nullptr));
  RGPU_RETURN_IF_ERROR(WritePem(out.server_key, nullptr, nullptr, leaf_key.get()));
  return out;
}

}  // namespace rgpu::tls
