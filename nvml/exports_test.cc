// Checks the built libnvidia-ml.so.1 from the outside, as a program loading it
// sees it:
//   - its dynamic symbol table defines exactly the real NVML 580.159's 404
//     names (no C++ or libstdc++ symbol leaks into the host program);
//   - it needs no C++ runtime from the host (libstdc++ is linked in);
//   - every name resolves with dlsym, and an unimplemented one answers
//     NVML_ERROR_NOT_SUPPORTED without touching its arguments.
// The library is dlopen()ed privately; this test links none of it.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

std::set<std::string> ReadExports() {
  std::ifstream in(RGPU_NVML_EXPORTS_FILE);
  std::set<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') names.insert(line);
  }
  return names;
}

std::string RunCommand(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  EXPECT_EQ(pclose(p), 0) << command;
  return out;
}

TEST(NvmlExportsTest, DynamicSymbolsAreExactlyNvmlsNames) {
  const std::set<std::string> expected = ReadExports();
  ASSERT_EQ(expected.size(), 404u);
  std::istringstream lines(RunCommand(std::string("nm -D --defined-only ") + RGPU_LIBNVML));
  std::set<std::string> exported;
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string address, type, name;
    fields >> address >> type >> name;
    if (!name.empty()) exported.insert(name);
  }
  for (const std::string& name : expected) EXPECT_TRUE(exported.count(name)) << "missing: " << name;
  for (const std::string& name : exported) EXPECT_TRUE(expected.count(name)) << "extra: " << name;
  EXPECT_EQ(exported.size(), 404u);
}

TEST(NvmlExportsTest, NeedsNoCxxRuntime) {
  const std::string dynamic = RunCommand(std::string("readelf -d ") + RGPU_LIBNVML);
  EXPECT_NE(dynamic.find("(SONAME)"), std::string::npos) << dynamic;
  EXPECT_NE(dynamic.find("[libnvidia-ml.so.1]"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libstdc++"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libgcc_s"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libcuda"), std::string::npos) << "libcuda must be dlopened, not needed";
}

TEST(NvmlExportsTest, EveryNameResolvesAndStubsAnswerNotSupported) {
  void* lib = dlopen(RGPU_LIBNVML, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  for (const std::string& name : ReadExports())
    EXPECT_NE(dlsym(lib, name.c_str()), nullptr) << name;
  // An NVML function rgpu does not implement: a weak stub.
  using GetSerial = int (*)(void*, char*, unsigned);
  auto get_serial = reinterpret_cast<GetSerial>(dlsym(lib, "nvmlDeviceGetSerial"));
  ASSERT_NE(get_serial, nullptr);
  char buf[8] = "xxxxxxx";
  EXPECT_EQ(get_serial(nullptr, buf, sizeof buf), 3);  // NVML_ERROR_NOT_SUPPORTED
  EXPECT_STREQ(buf, "xxxxxxx");
  // Answered without nvmlInit and without a server.
  using ErrorString = const char* (*)(int);
  auto error_string = reinterpret_cast<ErrorString>(dlsym(lib, "nvmlErrorString"));
  ASSERT_NE(error_string, nullptr);
  EXPECT_STREQ(error_string(0), "Success");
  EXPECT_STREQ(error_string(3), "Not Supported");
  EXPECT_STREQ(error_string(12345), "Unknown Error");
  using GetCount = int (*)(unsigned*);
  auto get_count = reinterpret_cast<GetCount>(dlsym(lib, "nvmlDeviceGetCount_v2"));
  unsigned count = 7;
  EXPECT_EQ(get_count(&count), 1);  // NVML_ERROR_UNINITIALIZED
  EXPECT_EQ(count, 7u);
  // Not dlclose()d: NVML libraries are not expected to be unloaded.
}

}  // namespace
