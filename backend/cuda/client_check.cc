// Telling rgpu's client library apart from a real driver (see cuda_backend.h).
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cuda/cuda_backend.h"

namespace rgpu::backend {
namespace {

// Limits for reading an ELF file we do not trust. Real drivers have ~40
// sections and a section-name table of a few hundred bytes.
constexpr uint64_t kMaxSections = 4096;
constexpr uint64_t kMaxSectionNames = 1 << 20;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads exactly `n` bytes at `offset`; false on a short read or an error.
bool ReadAt(int fd, uint64_t offset, void* out, uint64_t n) {
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<uint64_t>(got);
  }
  return true;
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : std::string();
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Where rgpu's client may live: $RGPU_CLIENT_LIB_DIR and <exe dir>/../lib.
std::vector<std::string> ClientLibraryFiles() {
  std::vector<std::string> files;
  if (const char* dir = getenv("RGPU_CLIENT_LIB_DIR"); dir != nullptr && *dir != 0) {
    files.push_back(std::string(dir) + "/libcuda.so.1");
  }
  std::string exe = RealPath("/proc/self/exe");
  if (!exe.empty()) files.push_back(DirName(exe) + "/../lib/libcuda.so.1");
  return files;
}

}  // namespace

bool HasClientMarkerSection(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);

  Elf64_Ehdr eh;
  if (!ReadAt(fd.get(), 0, &eh, sizeof eh)) return false;
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    return false;
  }
  // Extended numbering (e_shnum == 0, e_shstrndx == SHN_XINDEX) is not used by
  // shared libraries of this size; such a file simply has no marker for us.
  const uint64_t count = eh.e_shnum;
  if (count == 0 || count > kMaxSections || eh.e_shentsize != sizeof(Elf64_Shdr) ||
      eh.e_shstrndx >= count) {
    return false;
  }
  const uint64_t table_bytes = count * sizeof(Elf64_Shdr);
  if (eh.e_shoff > file_size || table_bytes > file_size - eh.e_shoff) return false;
  std::vector<Elf64_Shdr> sections(count);
  if (!ReadAt(fd.get(), eh.e_shoff, sections.data(), table_bytes)) return false;

  const Elf64_Shdr& names_hdr = sections[eh.e_shstrndx];
  if (names_hdr.sh_size == 0 || names_hdr.sh_size > kMaxSectionNames ||
      names_hdr.sh_offset > file_size || names_hdr.sh_size > file_size - names_hdr.sh_offset) {
    return false;
  }
  std::string names(names_hdr.sh_size, '\0');
  if (!ReadAt(fd.get(), names_hdr.sh_offset, names.data(), names.size())) return false;

  for (const Elf64_Shdr& s : sections) {
    if (s.sh_name >= names.size()) continue;
    // strnlen bounds the name by what is left of the table.
    const char* name = names.data() + s.sh_name;
    size_t len = strnlen(name, names.size() - s.sh_name);
    if (std::string_view(name, len) == kClientMarkerSection) return true;
  }
  return false;
}

Status CheckNotRgpuClient(const std::string& path) {
  struct stat lib;
  if (::stat(path.c_str(), &lib) == 0) {
    for (const std::string& client : ClientLibraryFiles()) {
      struct stat st;
      if (::stat(client.c_str(), &st) == 0 && st.st_dev == lib.st_dev && st.st_ino == lib.st_ino) {
        return Status::Invalid(path + " is rgpu's client library (the same file as " + client +
                               "), not the NVIDIA driver");
      }
    }
  }
  if (HasClientMarkerSection(path)) {
    return Status::Invalid(path + " is rgpu's client library (it has an ELF section " +
                           kClientMarkerSection + "), not the NVIDIA driver");
  }
  return Status();
}

}  // namespace rgpu::backend
