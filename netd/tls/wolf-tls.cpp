#include "netd/tls/wolf-tls.h"

#include <sys/stat.h>

#include <dirent.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <kj/debug.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>

#include "common/audit.h"
#include "trust/trust-store.h"
#include "trust/verify.h"

namespace capnet {
namespace {

constexpr size_t kReadChunk = 16384;          // one TLS record's plaintext: a write's unit.
constexpr size_t kMaxRead = 64 * 1024;         // a read's answer (netd-server caps reads there too);
                                               // also the most ciphertext one fill() takes in.

// wolfSSL as Debian builds it (FP_ECC) keeps a fixed-point table for every elliptic-curve point it
// multiplies: 257 points of about 3.2 KB, up to 15 tables per thread, replaced least-used first. A
// TLS 1.3 handshake multiplies points that never come again (the server's key share), so the cache
// only grew netd's heap (0.9 MB per handshake up to 13 MB) and made every later handshake free and
// zero a table. Released after each handshake; the tables it would have kept save nothing
// measurable (the same handshakes, host and guest).
void releaseEccCache() {
#ifdef FP_ECC
  wc_ecc_fp_free();
#endif
}

// wolfSSL's notion of "now" for certificate dates is process-global (wc_SetTimeCb); netd is
// single-threaded and has one wrapper, whose injected clock it follows (tests pin it).
const Clock* gTlsClock = nullptr;
time_t tlsNow(time_t* out) {
  time_t now = gTlsClock != nullptr ? static_cast<time_t>(gTlsClock->nowMs() / 1000) : time(nullptr);
  if (out != nullptr) *out = now;
  return now;
}

// A wolfSSL or X509 verification code as netd's refusal, when it is one we name.
std::optional<TlsFailure> mapCode(int code) {
  switch (code) {
    case ASN_AFTER_DATE_E:
    case 10:   // X509_V_ERR_CERT_HAS_EXPIRED
      return TlsFailure{idl::ConnectRefusal::TLS_EXPIRED, "certificate expired"};
    case ASN_BEFORE_DATE_E:
    case 9:    // X509_V_ERR_CERT_NOT_YET_VALID
      return TlsFailure{idl::ConnectRefusal::TLS_NOT_YET_VALID, "certificate not yet valid"};
    case ASN_NO_SIGNER_E:
    case 20:   // X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
      return TlsFailure{idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER, "no trusted root signed this chain"};
    case ASN_CRIT_EXT_E:
      return TlsFailure{idl::ConnectRefusal::TLS_POLICY_VIOLATION, "a certificate carries an unhandled critical extension"};
    case DOMAIN_NAME_MISMATCH:
      return TlsFailure{idl::ConnectRefusal::TLS_HOSTNAME_MISMATCH, "certificate does not name the host"};
    case VERSION_ERROR:
      return TlsFailure{idl::ConnectRefusal::TLS_VERSION_TOO_OLD, "peer offered a protocol version below the minimum"};
    case SOCKET_PEER_CLOSED_E:
    case SOCKET_ERROR_E:
      return TlsFailure{idl::ConnectRefusal::TLS_PEER_CLOSED, "peer closed during the handshake"};
    default:
      return std::nullopt;
  }
}

// wolfSSL reports a verification failure through the verify callback's store, or as the handshake's
// error code, or both: the first one netd can name wins.
TlsFailure failureFor(int verifyError, int sslError, int receivedAlert, const std::string& detail) {
  if (auto f = mapCode(verifyError)) return *f;
  if (auto f = mapCode(sslError)) return *f;
  // The server refused every version netd offered (netd offers only those at or above the grant's
  // floor): RFC 8446's protocol_version alert.
  constexpr int kAlertProtocolVersion = 70;
  if (receivedAlert == kAlertProtocolVersion) {
    return {idl::ConnectRefusal::TLS_VERSION_TOO_OLD, "the server supports no protocol version at or above the minimum (alert protocol_version)"};
  }
  return {idl::ConnectRefusal::TLS_HANDSHAKE_FAILED,
          detail + " (verify=" + std::to_string(verifyError) + " ssl=" + std::to_string(sslError) + ")"};
}


// One TLS connection: wolfSSL reads and writes ciphertext through in-memory buffers that this class
// fills from, and drains into, the inner TcpConnection asynchronously.
class TlsConnection final : public TcpConnection {
 public:
  TlsConnection(kj::Own<TcpConnection> inner, std::shared_ptr<WolfTlsWrapper::RootSet> roots, WOLFSSL_CTX* ctx)
      : inner_(kj::mv(inner)), roots_(kj::mv(roots)), ctx_(ctx) {}
  ~TlsConnection() noexcept override {
    if (ssl_ != nullptr) wolfSSL_free(ssl_);
  }

  // Set-up shared by the handshake; returns false when wolfSSL refuses the parameters.
  bool init(const std::string& serverName, bool ignoreValidity, bool tls12) {
    host_ = serverName;
    ignoreValidity_ = ignoreValidity;
    ssl_ = wolfSSL_new(ctx_);
    if (ssl_ == nullptr) return false;
    if (wolfSSL_SetMinVersion(ssl_, tls12 ? WOLFSSL_TLSV1_2 : WOLFSSL_TLSV1_3) != WOLFSSL_SUCCESS) return false;
    // Key exchange: X25519 first, as browsers offer it, then P-256 and P-384 for a server that asks
    // for them. wolfSSL's default is P-256, whose generic arithmetic in this build costs more and
    // fills FP_ECC's cache (above); X25519 uses neither.
    int groups[] = {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1};
    if (wolfSSL_set_groups(ssl_, groups, 3) != WOLFSSL_SUCCESS) return false;
    if (wolfSSL_UseKeyShare(ssl_, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS) return false;
    wolfSSL_SetIOReadCtx(ssl_, this);
    wolfSSL_SetIOWriteCtx(ssl_, this);
    wolfSSL_SetCertCbCtx(ssl_, this);
    if (wolfSSL_UseSNI(ssl_, WOLFSSL_SNI_HOST_NAME, serverName.data(), static_cast<word16>(serverName.size())) != WOLFSSL_SUCCESS) return false;
    if (wolfSSL_check_domain_name(ssl_, serverName.c_str()) != WOLFSSL_SUCCESS) return false;
    return true;
  }

  kj::Promise<void> handshake() {
    int r = wolfSSL_connect(ssl_);
    if (r == WOLFSSL_SUCCESS) {
      // Done: the buffers grown for the handshake's flights go, so an idle connection holds little.
      // (Not wolfSSL_FreeArrays: without them wolfSSL 5.5.4 refuses a post-handshake message split
      // across records; docs/performance.md.)
      return flush().then([this]() {
        std::vector<uint8_t>().swap(out_);
        if (in_.empty()) std::deque<uint8_t>().swap(in_);
      });
    }
    int err = wolfSSL_get_error(ssl_, r);
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
      return flush().then([this]() { return fill(); }).then([this]() { return handshake(); });
    }
    char buf[80];
    wolfSSL_ERR_error_string_n(static_cast<unsigned long>(err), buf, sizeof(buf));
    lastSslError_ = err;
    WOLFSSL_ALERT_HISTORY h{};
    if (wolfSSL_get_alert_history(ssl_, &h) == WOLFSSL_SUCCESS) receivedAlert_ = h.last_rx.code;
    return KJ_EXCEPTION(FAILED, "tls handshake", buf);
  }

  int verifyError() const { return verifyError_; }
  int sslError() const { return lastSslError_; }
  int receivedAlert() const { return receivedAlert_; }   // the peer's last alert (description), -1 none
  WOLFSSL* ssl() { return ssl_; }

  kj::Promise<ReadResult> read(size_t maxBytes) override {
    if (closeNotified_) return ReadResult{kj::heapArray<kj::byte>(0), true};
    KJ_IF_MAYBE(e, pendingError_) {
      auto failure = kj::mv(*e);
      pendingError_ = nullptr;
      return kj::mv(failure);
    }
    const size_t n = std::min(maxBytes, kMaxRead);
    auto buf = kj::heapArray<kj::byte>(n);
    size_t filled = 0;
    // Every record already received is decrypted into this one answer, up to maxBytes: a reader
    // gets up to 64 KiB per call, not one 16 KiB record (a quarter of the answers, each an RPC).
    while (filled < n) {
      int r = wolfSSL_read(ssl_, buf.begin() + filled, static_cast<int>(n - filled));
      if (r > 0) {
        filled += static_cast<size_t>(r);
        continue;
      }
      int err = wolfSSL_get_error(ssl_, r);
      if (filled > 0) {
        // What was decrypted is delivered now; what stopped the loop is the next read's answer
        // (close_notify, or a failure: nothing decrypted before it is lost).
        if (err == WOLFSSL_ERROR_ZERO_RETURN) {
          closeNotified_ = true;
        } else if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE) {
          pendingError_ = KJ_EXCEPTION(DISCONNECTED, "tls read failed", err);
        }
        break;
      }
      if (err == WOLFSSL_ERROR_ZERO_RETURN) {   // close_notify
        closeNotified_ = true;
        return ReadResult{kj::heapArray<kj::byte>(0), true};
      }
      if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
        if (innerEof_ && in_.empty()) return ReadResult{kj::heapArray<kj::byte>(0), true};
        // What wolfSSL answered (a KeyUpdate's reply) goes out before waiting. Its failure is not
        // this read's: a peer that sent its last records and closed can still be read to the end;
        // the failure is kept and the next write reports it (nothing is sent after it).
        return flush().then([]() {}, [](kj::Exception&&) {}).then([this]() { return fill(); }).then([this, maxBytes]() {
          return read(maxBytes);
        });
      }
      return KJ_EXCEPTION(DISCONNECTED, "tls read failed", err);
    }
    // What wolfSSL answered while reading (a KeyUpdate's reply) goes out with the next read that
    // waits or the next write, as before: flushing here could fail this read's data on a peer
    // that already closed (EPIPE), and would race a write's own flush on the inner connection.
    if (filled == n) return ReadResult{kj::mv(buf), false};
    return ReadResult{kj::heapArray<kj::byte>(buf.slice(0, filled)), false};
  }

  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data) override {
    while (data.size() > 0) {
      int r = wolfSSL_write(ssl_, data.begin(), static_cast<int>(std::min(data.size(), kReadChunk)));
      if (r <= 0) return KJ_EXCEPTION(DISCONNECTED, "tls write failed", wolfSSL_get_error(ssl_, r));
      data = data.slice(static_cast<size_t>(r), data.size());
    }
    return flush();   // resolves when the ciphertext is queued in lwIP: backpressure.
  }

  kj::Promise<void> shutdownWrite() override {
    wolfSSL_shutdown(ssl_);   // close_notify
    // After every flush still on its way (the FIN must follow the last record).
    return flush().then([this]() { return flushing_.addBranch(); }).then([this]() { return inner_->shutdownWrite(); });
  }

  uint16_t localPort() const override { return inner_->localPort(); }

  // wolfSSL I/O callbacks.
  static int onRecv(WOLFSSL*, char* buf, int size, void* ctx) {
    auto* self = static_cast<TlsConnection*>(ctx);
    if (self->in_.empty()) return self->innerEof_ ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = std::min(self->in_.size(), static_cast<size_t>(size));
    std::copy_n(self->in_.begin(), n, buf);
    self->in_.erase(self->in_.begin(), self->in_.begin() + static_cast<ptrdiff_t>(n));
    return static_cast<int>(n);
  }
  static int onSend(WOLFSSL*, char* buf, int size, void* ctx) {
    auto* self = static_cast<TlsConnection*>(ctx);
    self->out_.insert(self->out_.end(), buf, buf + size);
    return size;
  }
  static int onVerify(int preverify, WOLFSSL_X509_STORE_CTX* store) {
    auto* self = store ? static_cast<TlsConnection*>(store->userCtx) : nullptr;
    if (preverify) return 1;
    if (self == nullptr) return 0;
    int e = store->error;
    bool dateError = e == ASN_AFTER_DATE_E || e == ASN_BEFORE_DATE_E || e == 9 || e == 10 || e == 13 || e == 14;
    if (dateError && self->ignoreValidity_) {
      // Honoured only because capd put it in the grant (devnet on); loud at every use.
      audit("tls", "warn", {{"time-policy", "ignore-validity"}, {"host", self->host_}, {"error", std::to_string(e)}});
      return 1;
    }
    // wolfSSL's own chain check is not the decision: it cannot build a path from a chain sent out
    // of order, and knows nothing of capnet's rules. The handshake goes on (its signatures are
    // still checked against the leaf's key), and verifyChain (trust/verify.h) decides before a
    // single byte of data is exchanged — the same function `trustctl verify` runs.
    if (self->verifyError_ == 0) self->verifyError_ = e;
    return 1;
  }

 private:
  kj::Promise<void> flush() {
    KJ_IF_MAYBE(e, writeFailed_) { return kj::cp(*e); }
    if (out_.empty()) return kj::READY_NOW;
    auto bytes = kj::heapArray<kj::byte>(out_.size());
    std::copy(out_.begin(), out_.end(), bytes.begin());
    out_.clear();
    if (out_.capacity() > kReadChunk) std::vector<uint8_t>().swap(out_);   // a burst's buffer does not stay
    // One inner write at a time, in order: a read's flush (a KeyUpdate's reply) can meet a write's
    // that still waits for the peer, and two writers would interleave their records' bytes. Each
    // flush's write also finishes when its caller gives up, so no record is cut short.
    // After one inner write failed, none follows (a record after a lost one would not decrypt).
    auto done = flushing_.addBranch().then([this, bytes = kj::mv(bytes)]() mutable -> kj::Promise<void> {
      KJ_IF_MAYBE(e, writeFailed_) { return kj::cp(*e); }
      auto p = inner_->write(bytes);
      return p.attach(kj::mv(bytes));
    }).fork();
    flushing_ = done.addBranch().then([]() {}, [this](kj::Exception&& e) {
      if (writeFailed_ == nullptr) writeFailed_ = kj::mv(e);
    }).fork();
    return done.addBranch();
  }
  kj::Promise<void> fill() {
    if (!in_.empty() || innerEof_) return kj::READY_NOW;
    return inner_->read(kMaxRead).then([this](ReadResult r) {
      if (r.eof) innerEof_ = true;
      in_.insert(in_.end(), r.data.begin(), r.data.end());
    });
  }

  kj::Own<TcpConnection> inner_;
  std::shared_ptr<WolfTlsWrapper::RootSet> roots_;   // keeps ctx_ alive.
  WOLFSSL_CTX* ctx_;
  WOLFSSL* ssl_ = nullptr;
  std::string host_;             // the grant's host (SNI, verified name).
  bool ignoreValidity_ = false;  // the grant's certificate-time policy.
  std::deque<uint8_t> in_;
  std::vector<uint8_t> out_;
  kj::ForkedPromise<void> flushing_ = kj::Promise<void>(kj::READY_NOW).fork();   // the last flush's inner write
  kj::Maybe<kj::Exception> writeFailed_;       // the first inner write that failed: every later flush fails with it.
  bool innerEof_ = false;
  bool closeNotified_ = false;                 // the peer's close_notify was read: EOF from now on.
  kj::Maybe<kj::Exception> pendingError_;      // a failure met after data that was delivered first.
  int verifyError_ = 0;
  int lastSslError_ = 0;
  int receivedAlert_ = -1;
};

// A directory's identity and change times: different once a file in it was added, renamed or removed.
std::string dirStamp(const std::string& dir) {
  struct stat st {};
  if (dir.empty() || ::stat(dir.c_str(), &st) != 0) return dir + ":absent;";
  return dir + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec) + ";";
}

}  // namespace

// The trust store as netd last parsed it: the roots, and one wolfSSL context that holds them and is
// shared by every connection made while this set is current.
struct WolfTlsWrapper::RootSet {
  std::vector<TrustRoot> roots;
  WOLFSSL_CTX* ctx = nullptr;
  size_t loaded = 0;
  ~RootSet() {
    if (ctx != nullptr) wolfSSL_CTX_free(ctx);
  }
};

std::shared_ptr<WolfTlsWrapper::RootSet> WolfTlsWrapper::rootSet() {
  TrustStore store(roots_);
  std::string stamp = dirStamp(store.shippedDir()) + dirStamp(store.installedDir());
  if (rootSet_ && stamp == rootStamp_) return rootSet_;
  auto set = std::make_shared<RootSet>();
  std::vector<std::string> problems;
  set->roots = store.list(&problems);
  for (const auto& p : problems) audit("tls", "skip-root", {{"detail", p}});
  set->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
  if (set->ctx == nullptr) return nullptr;
  for (const auto& root : set->roots) {
    if (wolfSSL_CTX_load_verify_buffer(set->ctx, root.der.data(), static_cast<long>(root.der.size()),
                                       WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS) {
      ++set->loaded;
    }
  }
  wolfSSL_CTX_set_verify(set->ctx, WOLFSSL_VERIFY_PEER, &TlsConnection::onVerify);
  wolfSSL_CTX_SetIORecv(set->ctx, &TlsConnection::onRecv);
  wolfSSL_CTX_SetIOSend(set->ctx, &TlsConnection::onSend);
  ++rootLoads_;
  audit("tls", "roots-loaded", {{"count", std::to_string(set->loaded)}});
  rootSet_ = set;
  rootStamp_ = stamp;
  return set;
}

WolfTlsWrapper::WolfTlsWrapper(kj::Timer& timer, const Clock& clock, Roots roots)
    : timer_(timer), clock_(clock), roots_(std::move(roots)) {
  wolfSSL_Init();
  gTlsClock = &clock_;
  wc_SetTimeCb(tlsNow);
}

WolfTlsWrapper::~WolfTlsWrapper() {
  wc_SetTimeCb(nullptr);
  gTlsClock = nullptr;
  wolfSSL_Cleanup();
}

kj::Promise<std::variant<TlsSession, TlsFailure>> WolfTlsWrapper::wrap(kj::Own<TcpConnection> inner,
                                                                      idl::Grant::Reader grantRecord,
                                                                      std::string serverName) {
  using Out = std::variant<TlsSession, TlsFailure>;
  // What this handshake needs of the grant, copied now: the record belongs to the caller.
  struct Terms {
    std::string host;
    bool tls12 = false;
    bool ignoreValidity = false;
    std::vector<std::array<uint8_t, 32>> pins;
    int64_t pinsExpireAtMs = 0;
    uint32_t handshakeTimeoutMs = 5000;
  } grant;
  grant.host = grantRecord.getScope().getHost();
  auto tls = grantRecord.getTls();
  grant.tls12 = tls.getMinVersion() == idl::TlsVersion::TLS12;
  grant.ignoreValidity = tls.getTimePolicy() == idl::CertTimePolicy::IGNORE_VALIDITY;
  for (auto pin : tls.getPins()) {
    std::array<uint8_t, 32> d{};
    if (pin.getSpkiSha256().size() != d.size()) continue;   // netd refused such a grant at registration.
    std::copy(pin.getSpkiSha256().begin(), pin.getSpkiSha256().end(), d.begin());
    grant.pins.push_back(d);
  }
  grant.pinsExpireAtMs = tls.getPinsExpireAtMs();
  grant.handshakeTimeoutMs = grantRecord.getHandshakeTimeoutMs();
  auto set = rootSet();
  if (!set) return Out(TlsFailure{idl::ConnectRefusal::INTERNAL, "wolfSSL_CTX_new failed"});
  if (set->loaded == 0) return Out(TlsFailure{idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER, "the trust store holds no roots"});
  auto trusted = std::shared_ptr<std::vector<TrustRoot>>(set, &set->roots);   // shares the set's lifetime.
  auto conn = kj::heap<TlsConnection>(kj::mv(inner), set, set->ctx);
  if (!conn->init(serverName, grant.ignoreValidity, grant.tls12)) {
    return Out(TlsFailure{idl::ConnectRefusal::INTERNAL, "TLS session set-up failed"});
  }

  auto& c = *conn;
  auto handshake = timer_.timeoutAfter(grant.handshakeTimeoutMs * kj::MILLISECONDS, c.handshake());
  return handshake.then(
      [this, grant, trusted, conn = kj::mv(conn)]() mutable -> Out {
        auto release = kj::defer(releaseEccCache);   // after the validation below, which verifies too
        WOLFSSL* ssl = conn->ssl();
        // wolfSSL verified the chain during the handshake; now the same policy `trustctl verify`
        // runs (trust/verify.h): the web-PKI baseline, the time policy and the pins.
        std::vector<std::string> chainDer;
        if (WOLFSSL_X509_CHAIN* chain = wolfSSL_get_peer_chain(ssl)) {
          for (int k = 0; k < wolfSSL_get_chain_count(chain); ++k) {
            const unsigned char* der = wolfSSL_get_chain_cert(chain, k);
            int len = wolfSSL_get_chain_length(chain, k);
            if (der != nullptr && len > 0) chainDer.emplace_back(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
          }
        }
        VerifyPolicy policy;
        policy.host = grant.host;
        policy.nowMs = clock_.nowMs();
        policy.ignoreValidity = grant.ignoreValidity;
        policy.pins = grant.pins;
        policy.pinsExpireAtMs = grant.pinsExpireAtMs;
        auto verified = verifyChain(chainDer, *trusted, policy);
        if (!verified.ok()) {
          idl::ConnectRefusal reason = idl::ConnectRefusal::TLS_POLICY_VIOLATION;
          switch (verified.code()) {
            case VerifyFailure::kUntrustedIssuer: reason = idl::ConnectRefusal::TLS_UNTRUSTED_ISSUER; break;
            case VerifyFailure::kExpired: reason = idl::ConnectRefusal::TLS_EXPIRED; break;
            case VerifyFailure::kNotYetValid: reason = idl::ConnectRefusal::TLS_NOT_YET_VALID; break;
            case VerifyFailure::kHostnameMismatch: reason = idl::ConnectRefusal::TLS_HOSTNAME_MISMATCH; break;
            case VerifyFailure::kPinMismatch: reason = idl::ConnectRefusal::TLS_PIN_MISMATCH; break;
            case VerifyFailure::kPolicyViolation:
            case VerifyFailure::kMalformed: break;
          }
          return TlsFailure{reason, verified.message()};
        }
        if (verified->pinsSkipped) {
          audit("tls", "pins-expired", {{"host", grant.host}, {"action", "skipped; roots still apply"}});
        }
        TlsSession s;
        s.leafSha256 = verified->leafSha256;
        s.version = wolfSSL_get_version(ssl);
        const char* cipher = wolfSSL_get_cipher_name(ssl);
        s.cipherSuite = cipher ? cipher : "";
        const char* group = wolfSSL_get_curve_name(ssl);
        s.keyExchange = group ? group : "";
        s.connection = kj::mv(conn);
        return s;
      },
      [&c](kj::Exception&& e) -> Out {
        releaseEccCache();
        if (std::string(e.getDescription().cStr()).find("timed out") != std::string::npos) {
          return TlsFailure{idl::ConnectRefusal::TLS_HANDSHAKE_TIMEOUT, "no handshake within the handshake timeout"};
        }
        return failureFor(c.verifyError(), c.sslError(), c.receivedAlert(), e.getDescription().cStr());
      });
}

}  // namespace capnet
