// Small helpers shared by the addon's epoll threads and their bindings (relay/, http_fast_path/,
// relay_binding.cc, http_fast_path_binding.cc): clocks, TCP_NODELAY and socket address text and parsing.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>

namespace interpose {

inline uint64_t nowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

inline uint64_t nowMs() { return nowUs() / 1000u; }

inline double wallClockMs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Small writes go out at once, as with Envoy and HAProxy: Nagle would hold a second small
// write of an exchange for the peer's (possibly delayed) ACK.
inline void setNoDelay(int fd) {
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// Text form of a socket address (IPv4-mapped IPv6 shown as IPv4, as Node does not).
inline void formatSockaddr(const sockaddr_storage& ss, std::string* address, uint16_t* port) {
  char text[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(ss);
    inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
    *port = ntohs(in.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(ss);
    if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
      inet_ntop(AF_INET, &in6.sin6_addr.s6_addr[12], text, sizeof text);
    } else {
      inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
    }
    *port = ntohs(in6.sin6_port);
  }
  *address = text;
}

// An epoll set with an eventfd in it (data.ptr nullptr) that other threads write to wake the
// loop. Throws std::system_error, leaving nothing open, when one of them cannot be made.
inline void openEpollWithWake(int* epfd, int* wakefd) {
  *epfd = epoll_create1(EPOLL_CLOEXEC);
  if (*epfd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  *wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (*wakefd < 0) {
    const int err = errno;
    close(*epfd);
    throw std::system_error(err, std::generic_category(), "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up descriptor
  if (epoll_ctl(*epfd, EPOLL_CTL_ADD, *wakefd, &ev) != 0) {
    const int err = errno;
    close(*wakefd);
    close(*epfd);
    throw std::system_error(err, std::generic_category(), "epoll_ctl");
  }
}

// Parses an IP literal and port into a socket address; false when it is not an IP literal.
inline bool toSockaddr(const std::string& address, uint32_t port, sockaddr_storage* out, socklen_t* len) {
  *out = sockaddr_storage{};
  auto* in = reinterpret_cast<sockaddr_in*>(out);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET, address.c_str(), &in->sin_addr) == 1) {
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace interpose
