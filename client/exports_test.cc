// Checks the built libcuda.so.1 from the outside, as a program loading it sees it:
//   - its dynamic symbol table defines exactly the real driver's 682 names (no
//     C++ or libstdc++ symbol leaks into the host program's namespace);
//   - for every name, cuGetProcAddress_v2(name, 13000, flags 0) hands out a
//     function wherever the real driver does, and it is that exported function.
// The library is dlopen()ed privately; this test links none of it.
#include <cuda.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace {

std::set<std::string> ReadExports() {
  std::ifstream in(RGPU_EXPORTS_FILE);
  std::set<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') names.insert(line);
  }
  return names;
}

TEST(ExportsTest, DynamicSymbolsAreExactlyTheDriversNames) {
  const std::set<std::string> expected = ReadExports();
  ASSERT_EQ(expected.size(), 682u);
  const std::string command = std::string("nm -D --defined-only ") + RGPU_LIBCUDA;
  FILE* nm = popen(command.c_str(), "r");
  ASSERT_NE(nm, nullptr) << command;
  std::set<std::string> exported;
  char line[512];
  while (fgets(line, sizeof line, nm) != nullptr) {
    std::istringstream fields(line);
    std::string address, type, name;
    fields >> address >> type >> name;
    if (!name.empty()) exported.insert(name);
  }
  ASSERT_EQ(pclose(nm), 0) << command;
  for (const std::string& name : expected) EXPECT_TRUE(exported.count(name)) << "missing: " << name;
  for (const std::string& name : exported) EXPECT_TRUE(expected.count(name)) << "extra: " << name;
}

TEST(ExportsTest, EveryFunctionTheDriverHandsOutIsThere) {
  void* lib = dlopen(RGPU_LIBCUDA, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  using GetProcAddress = CUresult (*)(const char*, void**, int, cuuint64_t,
                                      CUdriverProcAddressQueryResult*);
  auto get_proc_address = reinterpret_cast<GetProcAddress>(dlsym(lib, "cuGetProcAddress_v2"));
  ASSERT_NE(get_proc_address, nullptr);

  // The recorded answer for flags 0 at version 13000, per name.
  std::ifstream in(RGPU_PROCADDRESS_FILE);
  std::string line;
  int symbols = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, answer;
    int flags = 0, min_version = 0, max_version = 0;
    fields >> name >> flags >> min_version >> max_version >> answer;
    if (flags != 0 || min_version > 13000 || max_version < 13000) continue;
    void* pfn = reinterpret_cast<void*>(0x1);
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    ASSERT_EQ(get_proc_address(name.c_str(), &pfn, 13000, 0, &status), CUDA_SUCCESS) << name;
    if (answer.rfind("ERR", 0) == 0) {
      EXPECT_EQ(pfn, nullptr) << name;
      continue;
    }
    ++symbols;
    ASSERT_NE(pfn, nullptr) << name;
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SUCCESS) << name;
    EXPECT_EQ(pfn, dlsym(lib, answer.c_str())) << name << " -> " << answer;
  }
  EXPECT_GT(symbols, 400);
  // Not dlclose()d: nothing in a driver library expects to be unloaded.
}

}  // namespace
