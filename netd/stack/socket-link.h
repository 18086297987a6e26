// A FrameLink over a SOCK_SEQPACKET socket: one datagram per Ethernet frame. Host tests connect
// netd's lwIP to a peer stack in another process through it (a process has one lwIP instance).
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "netd/frame-link.h"

namespace capnet {

class SocketFrameLink final : public FrameLink {
 public:
  SocketFrameLink(int fd, std::array<uint8_t, 6> mac) : fd_(fd), mac_(mac) {}
  ~SocketFrameLink() override {
    if (fd_ >= 0) ::close(fd_);
  }
  SocketFrameLink(const SocketFrameLink&) = delete;
  SocketFrameLink& operator=(const SocketFrameLink&) = delete;

  std::array<uint8_t, 6> mac() const override { return mac_; }
  uint16_t mtu() const override { return 1500; }
  bool transmit(std::span<const uint8_t> frame) override {
    if (frame.size() > 1514) return false;
    return ::send(fd_, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size());
  }
  size_t poll(const std::function<void(std::span<const uint8_t>)>& deliver) override {
    size_t n = 0;
    uint8_t buf[2048];
    for (;;) {
      ssize_t got = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (got <= 0) break;
      deliver(std::span<const uint8_t>(buf, static_cast<size_t>(got)));
      ++n;
    }
    return n;
  }
  int eventFd() const override { return fd_; }

 private:
  int fd_;
  std::array<uint8_t, 6> mac_;
};

}  // namespace capnet
