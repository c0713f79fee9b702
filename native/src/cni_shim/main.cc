// interpose-cni: the small executable a container runtime runs as the CNI plugin (docs/cni.md).
//
// It holds no policy. It connects to the node daemon's unix socket (`interpose cni install
// --watch`), sends the call — the CNI_* variables and the network configuration from stdin —
// writes the daemon's answer to stdout and exits with the daemon's exit code. When nothing
// listens there (the DaemonSet is not up yet, e.g. while the node bootstraps) it execs the Node
// plugin installed next to it instead, so ADD never depends on the daemon.
//
//   <bin>/interpose-cni                              this file, built
//   <bin>/interpose-cni.d/daemon-socket              the socket's path (absent: kDefaultSocket)
//   <bin>/interpose-cni.d/interpose-cni-node         the Node plugin's launcher (the fallback)
//
// The wire format is src/cni/daemon-frame.ts's:
//   request  "ICNI" 0x01 | u32 env length | "KEY=VALUE\0"... | u32 stdin length | stdin
//   answer   u32 exit code | u32 stdout length | stdout                  (u32 big-endian)
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr char kDefaultSocket[] = "/var/run/interpose/cni.sock";
constexpr char kInstallDir[] = "/interpose-cni.d";
constexpr char kSocketFile[] = "/daemon-socket";
constexpr char kNodeLauncher[] = "/interpose-cni-node";
// As src/cni/run-plugin.ts MAX_STDIN: the daemon refuses more.
constexpr size_t kMaxStdin = 1u << 20;
// A result is a few KiB; an answer larger than this is not one.
constexpr size_t kMaxAnswer = 16u << 20;
// The daemon's plugin logic is bounded (API reads time out, the rules apply in seconds); a
// daemon silent this long is stuck, and running the call a second time beside it could race.
constexpr int kAnswerTimeoutSeconds = 120;
const char* const kForwarded[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"};

// Writes all of data; to_socket: with send(MSG_NOSIGNAL), so a daemon that hung up is an error
// here instead of a SIGPIPE that kills the shim (write() to stdout or a memfd otherwise).
bool WriteAll(int fd, const char* data, size_t size, bool to_socket = false) {
  while (size > 0) {
    ssize_t n = to_socket ? send(fd, data, size, MSG_NOSIGNAL) : write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Reads fd to EOF into out; false on an error or when more than limit bytes arrive.
bool ReadAll(int fd, std::string* out, size_t limit) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return true;
    if (out->size() + static_cast<size_t>(n) > limit) return false;
    out->append(buf, static_cast<size_t>(n));
  }
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The CNI spec's error result on stdout; the runtime reads it, the exit code says it failed.
[[noreturn]] void Fail(int code, const std::string& message) {
  std::string json = "{\"cniVersion\":\"1.1.0\",\"code\":" + std::to_string(code) + ",\"msg\":" + JsonString(message) + "}\n";
  WriteAll(STDOUT_FILENO, json.data(), json.size());
  _exit(1);
}

// The directory this executable is in (the CNI bin dir it was installed to).
std::string SelfDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return std::string();
  std::string path(buf, static_cast<size_t>(n));
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string SocketPath(const std::string& dir) {
  std::string path;
  int fd = open((dir + kInstallDir + kSocketFile).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (!ReadAll(fd, &path, sizeof(sockaddr_un::sun_path))) path.clear();
    close(fd);
  }
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
  return path.empty() ? std::string(kDefaultSocket) : path;
}

// A connected socket, or -1 when nothing listens (absent, refused, too long a path).
int Connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return -1;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Execs the Node plugin with this process's arguments and environment. stdin_replay: what was
// already read from stdin, given to it again (through a memfd) when the daemon went away
// mid-call; null when stdin is untouched.
[[noreturn]] void RunNodePlugin(const std::string& dir, char** argv, const std::string* stdin_replay) {
  if (stdin_replay != nullptr) {
    int fd = memfd_create("interpose-cni-stdin", MFD_CLOEXEC);
    if (fd < 0 || !WriteAll(fd, stdin_replay->data(), stdin_replay->size()) || lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, STDIN_FILENO) < 0) {
      Fail(5, std::string("interpose-cni: cannot hand the configuration to the Node plugin: ") + std::strerror(errno));
    }
    close(fd);
  }
  std::string launcher = dir + kInstallDir + kNodeLauncher;
  execv(launcher.c_str(), argv);
  Fail(50, "interpose-cni: the node daemon's socket does not answer and the Node plugin " + launcher + " cannot be run: " + std::strerror(errno) + " (run `interpose cni install`)");
}

void AppendU32(std::string* out, uint32_t v) {
  const char bytes[4] = {static_cast<char>((v >> 24) & 0xff), static_cast<char>((v >> 16) & 0xff), static_cast<char>((v >> 8) & 0xff),
                         static_cast<char>(v & 0xff)};
  out->append(bytes, 4);
}

uint32_t ReadU32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(s[at])) << 24) | (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) | static_cast<uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

}  // namespace

int main(int argc, char** argv) {
  (void)argc;
  const std::string dir = SelfDir();
  const int fd = Connect(SocketPath(dir));
  if (fd < 0) RunNodePlugin(dir, argv, nullptr);

  std::string input;
  if (!ReadAll(STDIN_FILENO, &input, kMaxStdin)) {
    Fail(6, "the network configuration on stdin is larger than " + std::to_string(kMaxStdin) + " bytes or cannot be read");
  }
  std::string env;
  for (const char* name : kForwarded) {
    const char* value = std::getenv(name);
    if (value == nullptr) continue;
    env.append(name).append("=").append(value);
    env.push_back('\0');
  }
  std::string request("ICNI\x01", 5);
  AppendU32(&request, static_cast<uint32_t>(env.size()));
  request += env;
  AppendU32(&request, static_cast<uint32_t>(input.size()));
  request += input;
  // A failed send is not the end: a daemon that refused the request early still answers why.
  (void)WriteAll(fd, request.data(), request.size(), /*to_socket=*/true);

  timeval timeout{};
  timeout.tv_sec = kAnswerTimeoutSeconds;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string answer;
  const bool read_ok = ReadAll(fd, &answer, kMaxAnswer);
  const int read_errno = errno;
  close(fd);
  if (!read_ok && (read_errno == EAGAIN || read_errno == EWOULDBLOCK)) {
    Fail(11, "the interpose-cni node daemon did not answer within " + std::to_string(kAnswerTimeoutSeconds) + " s");
  }
  if (!read_ok || answer.size() < 8 || answer.size() != 8 + static_cast<size_t>(ReadU32(answer, 4))) {
    // The daemon went away mid-call (restarted, or too busy to take it): the Node plugin
    // runs it instead. ADD and DEL are idempotent, so a call it half did is finished so.
    RunNodePlugin(dir, argv, &input);
  }
  const uint32_t code = ReadU32(answer, 0);
  if (!WriteAll(STDOUT_FILENO, answer.data() + 8, answer.size() - 8)) return 1;
  return code > 255 ? 1 : static_cast<int>(code);
}
