// What an unimplemented driver call does: say so once, by name, and fail.
//
// Every name the real driver exports that rgpu does not implement is a weak
// stub (exports.gen.cc) that calls ReportUnsupported with its own name. DESIGN
// rule: no silent fallbacks, never forward "just in case".
#pragma once

#include <cuda.h>

namespace rgpu::client {

// Logs "<name> is not supported by rgpu" at warn level the first time it is
// called for `name` (stderr only; RGPU_LOG=off silences it) and returns
// CUDA_ERROR_NOT_SUPPORTED, every time. Thread-safe; callable before cuInit
// and during exit; never opens a connection. `name` must not be null.
CUresult ReportUnsupported(const char* name);

}  // namespace rgpu::client
