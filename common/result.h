// Errors as values: a fallible operation returns Result<T, E>, where E is a component's error
// enum. Every failure carries a message that names the field and the reason, so a refusal can be
// reported (and audited) without an exception crossing an IPC boundary.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace capnet {

template <typename Code>
struct Error {
  Code code{};           // the zero value of every code enum is the safe (denying) one.
  std::string message;   // human-readable: "network.hosts[\"x\"]: not an IPv4 address".
};

template <typename T, typename Code>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                   // NOLINT: implicit by design
  Result(Error<Code> error) : v_(std::move(error)) {}         // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Precondition: ok(). Calling these on an error is a programming bug, caught by std::get.
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Precondition: !ok().
  const Error<Code>& error() const { return std::get<1>(v_); }
  Code code() const { return error().code; }
  const std::string& message() const { return error().message; }

 private:
  std::variant<T, Error<Code>> v_;
};

// For operations that return nothing on success.
struct Ok {};

template <typename Code>
Error<Code> fail(Code code, std::string message) {
  return Error<Code>{code, std::move(message)};
}

}  // namespace capnet
