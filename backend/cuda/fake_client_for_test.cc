// A stand-in for rgpu's client library in cuda_backend_test: it exports
// cuGetProcAddress_v2 like a driver and carries the client's ELF marker
// section, which the loader must refuse.
extern "C" {

__attribute__((section(".rgpu_client"), used))
static const char kRgpuClientMarker[] = "rgpu client library";

__attribute__((visibility("default"))) int cuGetProcAddress_v2(const char*, void**, int,
                                                                unsigned long long, int*) {
  return 34;  // CUDA_ERROR_STUB_LIBRARY
}

}  // extern "C"
