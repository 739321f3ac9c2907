#include "backend/sim/kernel_registry.h"

#include <mutex>
#include <string>
#include <unordered_map>

namespace rgpu::backend {
namespace {

// Function-local statics: registration runs during static initialisation of
// other translation units, in unspecified order. Leaked on purpose so that
// kernels stay registered during exit.
std::mutex& RegistryMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::unordered_map<std::string, SimKernelFn>& Registry() {
  static auto* map = new std::unordered_map<std::string, SimKernelFn>;
  return *map;
}

}  // namespace

bool RegisterSimKernel(const char* mangled_name, SimKernelFn fn) {
  if (mangled_name == nullptr || *mangled_name == 0 || fn == nullptr) return false;
  std::lock_guard<std::mutex> lock(RegistryMutex());
  return Registry().emplace(mangled_name, fn).second;
}

SimKernelFn FindSimKernel(const char* mangled_name) {
  if (mangled_name == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(RegistryMutex());
  auto it = Registry().find(mangled_name);
  return it == Registry().end() ? nullptr : it->second;
}

}  // namespace rgpu::backend
