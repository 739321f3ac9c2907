// The PyTorch side of rgpu bench: `rgpu bench --child torch-native|torch-rgpu`.
//
// Runs bench/torch_steps.py (embedded in the binary, written to a temporary
// file) with python3, one fresh process per measure, either on the local GPU
// (the real driver, nothing of rgpu in its environment) or through rgpu's
// client library (`driver`'s directory first on LD_LIBRARY_PATH and in
// TRITON_LIBCUDA_PATH, RGPU_SERVER = `server`, or an in-process DelayProxy
// in front of it when delay_ms > 0). Measures (ChildOptions::measures):
//   first  torch.first_use_s   process start -> first GPU result
//   gpt    torch.gpt.step_ms   GPU-bound step (GPT-2-small-sized, bf16)
//   cnn    torch.cnn.step_ms   launch-bound step (small CNN)
// A measure that fails gets an error line with the script's last words;
// "torch.version" (or its error) says whether torch could be imported.
#pragma once

#include "bench/child.h"
#include "bench/report.h"

namespace rgpu::bench {

int RunTorchChild(const ChildOptions& options, Emitter* out);

// The script's text (bench/torch_steps.py), embedded at build time.
extern const char kTorchStepsScript[];

}  // namespace rgpu::bench
