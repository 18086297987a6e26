// The stack netd runs with when there is no OS network stack (no NIC, VFIO unusable, lwIP not
// built): it is never up, and every connect answers kNoStack with the reason.
#pragma once

#include <string>

#include "netd/tcp-stack.h"

namespace capnet {

class NullStack final : public TcpStack {
 public:
  explicit NullStack(std::string reason) : reason_(std::move(reason)) {}
  bool up() const override { return false; }
  std::string detail() const override { return reason_; }
  kj::Promise<Result<kj::Own<TcpConnection>, ConnectError>> connect(uint32_t, uint16_t, uint32_t) override {
    return Result<kj::Own<TcpConnection>, ConnectError>(fail(ConnectError::kNoStack, reason_));
  }

 private:
  std::string reason_;
};

}  // namespace capnet
