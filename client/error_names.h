// CUresult -> name and description, generated from cuda.h (error_names.gen.cc).
#pragma once

namespace rgpu::client {

struct ErrorName {
  int value;
  const char* name;
  const char* string;
};
extern const ErrorName kErrorNames[];
extern const int kErrorNameCount;

// nullptr for a value cuda.h does not define.
inline const ErrorName* FindErrorName(int value) {
  for (int i = 0; i < kErrorNameCount; ++i)
    if (kErrorNames[i].value == value) return &kErrorNames[i];
  return nullptr;
}

}  // namespace rgpu::client
