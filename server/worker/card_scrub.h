// ScrubFreeMemory: zeroes every byte of device memory nobody holds.
//
// A session that ends normally wipes what it allocated (session.h
// WipeRanges). One whose worker died or had to be ended (teardown_guard.h)
// could not: its memory went back to the kernel driver as it was. Before
// such a GPU serves another session, its warm worker takes all the free
// memory the driver will give (large chunks first, halving down to 2 MiB),
// zeroes and checks it the way a session's wipe does, and frees it again.
//
// Needs a current context on the GPU to scrub. Returns the bytes scrubbed;
// non-OK when the driver refused the memsets or a check found data left.
#pragma once

#include <cstdint>

#include "backend/driver_table.h"
#include "common/status.h"

namespace rgpu::worker {

Result<uint64_t> ScrubFreeMemory(const backend::DriverTable& d, bool paranoid);

}  // namespace rgpu::worker
