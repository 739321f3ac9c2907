// SessionMover: moves a detached session to another GPU of the same type, at
// the same device addresses, behind the same client handle ids (idle detach,
// docs/time-slicing.md).
//
// A detached session keeps its CUDA context on its old GPU. When the
// supervisor gives it another GPU at reattach (kResume names it), MoveTo
// makes everything again there and then lets the old GPU go:
//   1. contexts: the primary context is retained on the new GPU (with the
//      flags the client gave it), created contexts are created with their
//      flags; limits and cache configuration the client set are set again;
//      the worker's own warm retain moves with them;
//   2. memory: the DeviceHeap's chunks get physical memory created on the
//      new GPU, mapped into the same reservations (the virtual address space
//      is the process's), and their saved contents copied in;
//   3. modules and libraries are loaded again from the images kept at load;
//      their globals' contents are copied from the old module to the new
//      one by name (the names come from the image); functions and kernels
//      are resolved again by name and the attributes and cache
//      configuration set on them applied again;
//   4. streams (same flags and priority) and events (same flags) are made
//      again in the new contexts;
//   5. the old module globals are zeroed, the old modules, streams and
//      events destroyed, the pinned buffers made in the old context freed,
//      and the old contexts released: nothing of the session stays on the
//      old GPU; DeviceMap then names the new GPU for the client's ordinal.
// The client notices nothing: every id it holds means the same thing.
//
// What cannot move (Blocker, said once in the log; the session then waits
// for its own GPU as before): a session of several GPUs; a module global
// whose address the program asked for (cuModuleGetGlobal; a reload places
// it elsewhere, and the program holds the old address); a module whose
// image was not kept or whose globals cannot be listed; stream attributes;
// a live JIT link state. Graphs, arrays, the client's own virtual memory and
// cuMemAllocPitch memory keep the session from detaching at all (swap.h).
// Events lose their recorded state (a recorded event reads as never
// recorded after a move).
//
// Single-threaded: the worker's executor thread. Failure: MoveTo returns
// why; the session is then in a mixed state and must end (the worker ends
// it, as for any failed reattach).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::worker {

class DeviceHeap;
class Session;

// Live JIT link states of this worker (handlers_link.cc).
size_t LiveLinkStates();

class SessionMover {
 public:
  // `warm_device`: the backend ordinal whose primary context the worker
  // retained when it started (moves with the session); -1 for none.
  SessionMover(Session& session, DeviceHeap& heap, int warm_device)
      : s_(session), heap_(heap), warm_device_(warm_device) {}

  // Why the session cannot move to another GPU now ("" if it can).
  std::string Blocker();
  // Moves the detached session (heap swapped out) to backend ordinals
  // `gpus` (as many as it has now) and brings its memory back there: on
  // success the heap is swapped in. Returns the bytes restored.
  Result<uint64_t> MoveTo(const std::vector<int>& gpus);

 private:
  // Names of the globals of module `id`'s image (kept in its ModuleEntry);
  // non-OK when the image cannot be parsed.
  Result<const std::vector<std::string>*> GlobalNames(uint64_t id);

  Session& s_;
  DeviceHeap& heap_;
  int warm_device_;
};

}  // namespace rgpu::worker
