// Multi-GPU pieces of the worker, over a sim backend of three GPUs: the
// client -> backend device map, the session's device info (only its own
// GPUs, with peer facts), peer access, and the control message that carries
// a session's GPUs.
#include "server/worker/device_map.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/device_info.h"
#include "server/supervisor/control.h"
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {

backend::DriverTable& SimWith(std::vector<int> host_indices) {
  static backend::DriverTable table;
  backend::BackendOptions o;
  o.kind = "sim";
  o.profile_path = RGPU_SIM_PROFILE;
  o.sim_indices = std::move(host_indices);
  Status st = backend::LoadBackend(o, &table);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(table.cuInit(0), CUDA_SUCCESS);
  return table;
}

TEST(DeviceMap, TranslatesOnlyTheSessionsDevices) {
  backend::DriverTable& d = SimWith({0, 1, 2});
  DeviceMap map({2, 0});
  EXPECT_EQ(map.count(), 2);
  EXPECT_EQ(map.BackendOrdinal(0), 2);
  EXPECT_EQ(map.BackendOrdinal(1), 0);
  EXPECT_EQ(map.BackendOrdinal(2), -1);
  EXPECT_EQ(map.BackendOrdinal(-1), -1);
  EXPECT_EQ(map.ClientOrdinal(0), 1);
  EXPECT_EQ(map.ClientOrdinal(1), -1);
  Result<CUdevice> dev = map.Device(d, 0);
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(*dev, 2);
  Result<CUdevice> none = map.Device(d, 2);  // backend device 1 is another session's
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().cu_result(), CUDA_ERROR_INVALID_DEVICE);
  map.Assign({1});  // reattach elsewhere: the same client ordinal, another GPU
  EXPECT_EQ(*map.Device(d, 0), 1);
  EXPECT_FALSE(map.Device(d, 1).ok());
}

TEST(DeviceMap, DeviceInfoCoversTheSessionsDevicesWithPeerFacts) {
  backend::DriverTable& d = SimWith({4, 5, 6});  // host GPUs 4..6: distinct UUIDs
  Session s(d, 1, "sim", DeviceMap({2, 1}));
  proto::GetDeviceInfoRep rep;
  ASSERT_TRUE(HandleGetDeviceInfo(s, {}, &rep).ok());
  proto::DeviceInfo info;
  ASSERT_TRUE(proto::DecodeDeviceInfo(rep.info, &info).ok());
  ASSERT_EQ(info.devices.size(), 2u);
  CUuuid u2{}, u1{};
  ASSERT_EQ(d.cuDeviceGetUuid_v2(&u2, 2), CUDA_SUCCESS);
  ASSERT_EQ(d.cuDeviceGetUuid_v2(&u1, 1), CUDA_SUCCESS);
  EXPECT_EQ(memcmp(info.devices[0].uuid.data(), u2.bytes, 16), 0) << "client device 0 is backend device 2";
  EXPECT_EQ(memcmp(info.devices[1].uuid.data(), u1.bytes, 16), 0);
  ASSERT_EQ(info.devices[0].peers.size(), 2u);
  EXPECT_EQ(info.devices[0].peers[0][0], 0) << "a device is not its own peer";
  EXPECT_EQ(info.devices[0].peers[1][0], 1);
  EXPECT_EQ(info.devices[0].peers[1][CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED], 1);
  // A single-GPU session sends no peer facts.
  Session one(d, 2, "sim", DeviceMap({0}));
  ASSERT_TRUE(HandleGetDeviceInfo(one, {}, &rep).ok());
  ASSERT_TRUE(proto::DecodeDeviceInfo(rep.info, &info).ok());
  ASSERT_EQ(info.devices.size(), 1u);
  EXPECT_TRUE(info.devices[0].peers.empty());
}

TEST(DeviceMap, ClientOrdinalsReachOnlyLeasedGpusAndPeerAccessWorks) {
  backend::DriverTable& d = SimWith({0, 1, 2});
  Session s(d, 1, "sim", DeviceMap({1, 2}));
  ASSERT_TRUE(HandlePrimaryCtxRetain(s, {10, 0}, nullptr).ok());
  ASSERT_TRUE(HandlePrimaryCtxRetain(s, {11, 1}, nullptr).ok());
  Status bad = HandlePrimaryCtxRetain(s, {12, 2}, nullptr);  // no third device in this session
  EXPECT_EQ(bad.cu_result(), CUDA_ERROR_INVALID_DEVICE) << bad.ToString();
  // The contexts are on backend devices 1 and 2.
  CUdevice dev = -1;
  ASSERT_TRUE(s.UseContext(11).ok());
  ASSERT_EQ(d.cuCtxGetDevice(&dev), CUDA_SUCCESS);
  EXPECT_EQ(dev, 2);
  EXPECT_TRUE(HandleCtxEnablePeerAccess(s, {11, 10, 0}, nullptr).ok());
  EXPECT_EQ(HandleCtxEnablePeerAccess(s, {11, 10, 0}, nullptr).cu_result(), CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED);
  EXPECT_EQ(HandleCtxEnablePeerAccess(s, {11, 11, 0}, nullptr).cu_result(), CUDA_ERROR_INVALID_DEVICE);
  EXPECT_EQ(HandleCtxEnablePeerAccess(s, {11, 99, 0}, nullptr).cu_result(), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_TRUE(HandleCtxDisablePeerAccess(s, {11, 10}, nullptr).ok());
  EXPECT_EQ(HandleCtxDisablePeerAccess(s, {11, 10}, nullptr).cu_result(), CUDA_ERROR_PEER_ACCESS_NOT_ENABLED);
  s.ReleaseAll();
}

TEST(ControlMessage, CarriesTheSessionsGpusAndRefusesBadOnes) {
  int fds[2];
  ASSERT_TRUE(server::ControlPair(fds).ok());
  int sock[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sock), 0);
  server::ControlMessage m{server::ControlKind::kAttach, 7, "who", sock[0]};
  m.gpus = {3, 0, 1};
  ASSERT_TRUE(server::SendControl(fds[0], m).ok());
  server::ControlMessage got;
  ASSERT_TRUE(server::ReceiveControl(fds[1], &got).ok());
  EXPECT_EQ(got.gpus, (std::vector<int>{3, 0, 1}));
  EXPECT_EQ(got.session_id, 7u);
  close(got.fd);
  m.fd = -1;
  m.kind = server::ControlKind::kReady;
  m.gpus = {-1};
  ASSERT_TRUE(server::SendControl(fds[0], m).ok());
  EXPECT_FALSE(server::ReceiveControl(fds[1], &got).ok()) << "a negative ordinal is refused";
  m.gpus.assign(65, 0);
  ASSERT_TRUE(server::SendControl(fds[0], m).ok());
  EXPECT_FALSE(server::ReceiveControl(fds[1], &got).ok()) << "more GPUs than a session can have";
  // kResume names the GPUs a detached session gets back (its own or another).
  m.kind = server::ControlKind::kResume;
  m.gpus = {1};
  ASSERT_TRUE(server::SendControl(fds[0], m).ok());
  ASSERT_TRUE(server::ReceiveControl(fds[1], &got).ok());
  EXPECT_EQ(got.kind, server::ControlKind::kResume);
  EXPECT_EQ(got.gpus, std::vector<int>{1});
  m.kind = server::ControlKind::kUsage;
  ASSERT_TRUE(server::SendControl(fds[0], m).ok());
  EXPECT_FALSE(server::ReceiveControl(fds[1], &got).ok()) << "GPUs only on kAttach and kResume";
  m.kind = server::ControlKind::kReattach;
  m.gpus.clear();
  m.value = 1;
  ASSERT_TRUE(server::SendControl(fds[0], m).ok());
  ASSERT_TRUE(server::ReceiveControl(fds[1], &got).ok());
  EXPECT_EQ(got.value, 1u) << "kReattach: the session can move";
  m.value = 2;
  ASSERT_TRUE(server::SendControl(fds[0], m).ok());
  EXPECT_FALSE(server::ReceiveControl(fds[1], &got).ok()) << "kReattach's flag is 0 or 1";
  for (int fd : {fds[0], fds[1], sock[0], sock[1]}) close(fd);
}

TEST(DeviceInfo, PeerFactsRoundTripAndBadCountsAreRefused) {
  proto::DeviceInfo info;
  info.backend = "sim";
  info.devices.resize(2);
  for (auto& f : info.devices) f.peers.resize(2);
  info.devices[0].peers[1] = {1, 0, 1, 1, 1, 0};
  std::vector<uint8_t> bytes = proto::EncodeDeviceInfo(info);
  proto::DeviceInfo back;
  ASSERT_TRUE(proto::DecodeDeviceInfo(bytes, &back).ok());
  EXPECT_EQ(back.devices[0].peers[1], info.devices[0].peers[1]);
  info.devices[1].peers.resize(3);  // peer facts must cover exactly the session's devices
  EXPECT_FALSE(proto::DecodeDeviceInfo(proto::EncodeDeviceInfo(info), &back).ok());
  bytes.resize(bytes.size() - 1);
  EXPECT_FALSE(proto::DecodeDeviceInfo(bytes, &back).ok());
}

}  // namespace
}  // namespace rgpu::worker
