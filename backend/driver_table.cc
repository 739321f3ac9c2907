#include "backend/driver_table.h"

namespace rgpu::backend {
namespace {
const char* const kNames[] = {
#define RGPU_NAME(name) #name,
    RGPU_DRIVER_FUNCTIONS(RGPU_NAME)
#undef RGPU_NAME
};
}  // namespace

int DriverTableSize() { return sizeof(kNames) / sizeof(kNames[0]); }
const char* DriverTableName(int index) {
  return index >= 0 && index < DriverTableSize() ? kNames[index] : "?";
}

void* DriverTableEntry(const DriverTable& t, int index) {
  int i = 0;
  void* found = nullptr;
#define RGPU_ENTRY(name)                                          \
  if (i++ == index) found = reinterpret_cast<void*>(t.name);
  RGPU_DRIVER_FUNCTIONS(RGPU_ENTRY)
#undef RGPU_ENTRY
  return found;
}

}  // namespace rgpu::backend
