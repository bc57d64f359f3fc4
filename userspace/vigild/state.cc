#include "state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "vigil/digest.h"

namespace vigil::daemon {
namespace {

using nlohmann::json;

Status WriteFully(int fd, std::string_view content, const std::string& what) {
  while (!content.empty()) {
    const ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing " + what);
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status Bad(const std::string& member, const std::string& why) {
  return Status::Error(ErrorCode::kMalformed,
                       std::string(kVerifierFile) + ": " + member + ": " + why);
}

// A required unsigned 64-bit member.
Result<uint64_t> U64(const json& obj, const std::string& path, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return Bad(path + "/" + key, "missing");
  if (!it->is_number_unsigned()) return Bad(path + "/" + key, "must be an unsigned integer");
  return it->get<uint64_t>();
}

template <size_t N>
Status Hex(const json& obj, const std::string& path, const char* key, std::array<uint8_t, N>& out) {
  auto it = obj.find(key);
  if (it == obj.end()) return Bad(path + "/" + key, "missing");
  if (!it->is_string()) return Bad(path + "/" + key, "must be a hex string");
  auto bytes = crypto::FromHex(it->get<std::string>());
  if (!bytes.ok() || bytes->size() != N) {
    return Bad(path + "/" + key, "must be " + std::to_string(N * 2) + " hex digits");
  }
  std::memcpy(out.data(), bytes->data(), N);
  return Status::Ok();
}

Status OnlyKeys(const json& obj, const std::string& path,
                std::initializer_list<std::string_view> keys) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) {
      return Bad(path + "/" + it.key(), "unknown member");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<StateDir> StateDir::Open(const std::string& path) {
  if (path.empty()) return Status::Error(ErrorCode::kInvalidArgument, "empty state directory");
  // Parents as a package manager would make them; the directory itself
  // private, it holds the evidence.
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "creating state directory " + path);
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "opening state directory " + path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "state directory " + path + " is in use by another vigild");
    }
    return Status::FromErrno(errno, "locking state directory " + path);
  }
  return StateDir(path, std::move(fd));
}

Result<std::optional<StateDir::OpenedFile>> StateDir::OpenRead(const std::string& name) const {
  const std::string file = path_ + "/" + name;
  UniqueFd fd(::openat(dir_fd_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return std::optional<OpenedFile>();
    return Status::FromErrno(errno, "opening " + file);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + file);
  if (!S_ISREG(st.st_mode)) {
    return Status::Error(ErrorCode::kMalformed, file + " is not a regular file");
  }
  return std::optional<OpenedFile>(OpenedFile{std::move(fd), static_cast<uint64_t>(st.st_size)});
}

Result<std::optional<std::string>> StateDir::Read(const std::string& name) const {
  const std::string file = path_ + "/" + name;
  VIGIL_ASSIGN_OR_RETURN(std::optional<OpenedFile> opened, OpenRead(name));
  if (!opened) return std::optional<std::string>();
  const UniqueFd& fd = opened->fd;
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading " + file);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(out));
}

Status StateDir::WriteAtomic(const std::string& name, std::string_view content, Sync sync) {
  return WriteAtomicPieces(
      name, [content](const PieceWriter& write) { return write(content); }, sync);
}

Status StateDir::WriteAtomicPieces(const std::string& name,
                                   const std::function<bool(const PieceWriter&)>& produce,
                                   Sync sync) {
  const std::string tmp = name + ".tmp";
  const std::string file = path_ + "/" + name;
  UniqueFd fd(
      ::openat(dir_fd_.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
               0600));
  if (!fd.valid()) return Status::FromErrno(errno, "creating " + path_ + "/" + tmp);
  Status written = Status::Ok();
  const bool complete = produce([&](std::string_view piece) {
    written = WriteFully(fd.get(), piece, path_ + "/" + tmp);
    return written.ok();
  });
  if (!written.ok()) return written;
  if (!complete) {
    return Status::Error(ErrorCode::kInternal, "writing " + path_ + "/" + tmp + " stopped early");
  }
  // The data before the rename: the name never points at a torn file.
  if ((sync == Sync::kDurable ? ::fsync(fd.get()) : ::fdatasync(fd.get())) != 0) {
    return Status::FromErrno(errno, "fsync " + path_ + "/" + tmp);
  }
  fd.Reset();
  if (::renameat(dir_fd_.get(), tmp.c_str(), dir_fd_.get(), name.c_str()) != 0) {
    return Status::FromErrno(errno, "renaming " + tmp + " to " + file);
  }
  if (sync == Sync::kDurable && ::fsync(dir_fd_.get()) != 0) {
    return Status::FromErrno(errno, "fsync " + path_);
  }
  return Status::Ok();
}

Status StateDir::Append(const std::string& name, std::string_view content, bool sync) {
  UniqueFd fd(::openat(dir_fd_.get(), name.c_str(),
                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return Status::FromErrno(errno, "opening " + path_ + "/" + name);
  VIGIL_RETURN_IF_ERROR(WriteFully(fd.get(), content, path_ + "/" + name));
  if (sync && ::fdatasync(fd.get()) != 0) {
    return Status::FromErrno(errno, "fsync " + path_ + "/" + name);
  }
  return Status::Ok();
}

Status StateDir::Truncate(const std::string& name, uint64_t size) {
  UniqueFd fd(::openat(dir_fd_.get(), name.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return Status::FromErrno(errno, "opening " + path_ + "/" + name);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return Status::FromErrno(errno, "truncating " + path_ + "/" + name);
  }
  if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync " + path_ + "/" + name);
  return Status::Ok();
}

Status StateDir::Remove(const std::string& name) {
  if (::unlinkat(dir_fd_.get(), name.c_str(), 0) != 0) {
    return Status::FromErrno(errno, "removing " + path_ + "/" + name);
  }
  if (::fsync(dir_fd_.get()) != 0) return Status::FromErrno(errno, "fsync " + path_);
  return Status::Ok();
}

Result<std::vector<StateDir::Entry>> StateDir::List(std::string_view prefix,
                                                     std::string_view suffix) const {
  // A second descriptor: readdir moves the position of the one it reads.
  UniqueFd fd(::openat(dir_fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "opening " + path_);
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) return Status::FromErrno(errno, "listing " + path_);
  fd.Release();  // closedir closes it
  std::vector<Entry> out;
  errno = 0;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (name.size() < prefix.size() + suffix.size() || !name.starts_with(prefix) ||
        !name.ends_with(suffix)) {
      continue;
    }
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      continue;  // gone meanwhile, or not a file vigild wrote
    }
    out.push_back({std::string(name), st.st_mtim.tv_sec * 1'000'000'000LL + st.st_mtim.tv_nsec});
    errno = 0;
  }
  const int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno(err, "listing " + path_);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return a.mtime_ns != b.mtime_ns ? a.mtime_ns > b.mtime_ns : a.name > b.name;
  });
  return out;
}

Result<std::string> StateDir::MoveAside(const std::string& name) {
  const std::string aside = name + ".corrupt-" + std::to_string(::time(nullptr));
  if (::renameat(dir_fd_.get(), name.c_str(), dir_fd_.get(), aside.c_str()) != 0) {
    return Status::FromErrno(errno, "moving " + path_ + "/" + name + " aside");
  }
  return aside;
}

std::string LogFileName(std::span<const uint8_t> instance_id) {
  return "log-" + crypto::ToHex(instance_id) + ".bin";
}

Result<std::vector<std::string>> PruneInstanceLogs(StateDir& dir, const std::string& current,
                                                   size_t keep) {
  std::vector<std::string> removed;
  if (keep == 0) return removed;
  auto logs = dir.List("log-", ".bin");
  if (!logs.ok()) return logs.status();
  size_t kept = 1;  // the current instance's, whether it exists yet or not
  for (const StateDir::Entry& e : *logs) {
    if (e.name == current) continue;
    if (kept < keep) {
      kept++;
      continue;
    }
    VIGIL_RETURN_IF_ERROR(dir.Remove(e.name));
    removed.push_back(e.name);
  }
  return removed;
}

namespace {

// Adds the complete records at the start of `bytes` (which continue what
// `so_far` counted) to `so_far`; returns how many bytes they took. A record
// cut short at the end is left for the caller.
Result<size_t> ScanMore(std::string_view bytes, std::span<const uint8_t> instance_id,
                        uint64_t keep_log_seq, SavedLog& so_far) {
  std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  size_t used = 0;
  auto bad = [&](ErrorCode code, const std::string& why) {
    return Status::Error(code, "saved log at byte " + std::to_string(so_far.complete_bytes) +
                                   ": " + why);
  };
  while (!rest.empty()) {
    auto rec = records::Record::Decode(rest);
    if (!rec.ok()) {
      if (rec.status().code() == ErrorCode::kTruncated) break;  // more to read, or cut short
      return bad(rec.status().code(), rec.status().message());
    }
    if (so_far.records != 0 && rec->seq() <= so_far.last_seq) {
      return bad(ErrorCode::kMalformed, "log seq " + std::to_string(rec->seq()) + " after " +
                                            std::to_string(so_far.last_seq) +
                                            ": not the module's log order");
    }
    if (auto cp = rec->As<vigil_log_checkpoint>()) {
      if (instance_id.size() != sizeof(cp->instance_id) ||
          std::memcmp(cp->instance_id, instance_id.data(), instance_id.size()) != 0) {
        return bad(ErrorCode::kMalformed,
                   "checkpoint at log seq " + std::to_string(rec->seq()) +
                       " belongs to another module instance (" +
                       crypto::ToHex(std::span<const uint8_t>(cp->instance_id)) + ")");
      }
    }
    if (keep_log_seq != 0 && rec->seq() == keep_log_seq) so_far.kept = *rec;
    so_far.last_seq = rec->seq();
    so_far.records++;
    so_far.complete_bytes += rec->bytes().size();
    used += rec->bytes().size();
    rest = rest.subspan(rec->bytes().size());
  }
  return used;
}

}  // namespace

Result<SavedLog> ScanSavedLog(std::string_view bytes, std::span<const uint8_t> instance_id,
                              uint64_t keep_log_seq) {
  SavedLog out;
  VIGIL_RETURN_IF_ERROR(ScanMore(bytes, instance_id, keep_log_seq, out).status());
  out.scanned_bytes = bytes.size();
  return out;
}

Result<SavedLog> ScanSavedLogFile(int fd, std::span<const uint8_t> instance_id, size_t piece_bytes,
                                  uint64_t keep_log_seq) {
  SavedLog out;
  std::string pending;  // a record split across two reads
  std::string piece(std::max<size_t>(piece_bytes, 1), '\0');
  for (;;) {
    const ssize_t n = ::read(fd, piece.data(), piece.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading the saved log");
    }
    if (n == 0) break;
    out.scanned_bytes += static_cast<size_t>(n);
    pending.append(piece.data(), static_cast<size_t>(n));
    VIGIL_ASSIGN_OR_RETURN(size_t used, ScanMore(pending, instance_id, keep_log_seq, out));
    pending.erase(0, used);
  }
  return out;
}

std::string SerializeVerifierState(const VerifierState& s) {
  json agents = json::object();
  for (const auto& [id, name] : s.agent_names) agents[std::to_string(id)] = name;
  const verify::Anchor& a = s.anchor;
  json j = {
      {"format", kVerifierStateFormat},
      {"version", kVerifierStateVersion},
      {"instance_id", crypto::ToHex(a.instance_id)},
      {"anchor",
       {{"last_seq", a.last_seq},
        {"chain_head", crypto::ToHex(a.chain_head)},
        {"checkpoint_digest", crypto::ToHex(a.checkpoint_digest)},
        {"checkpoint_log_seq", a.checkpoint_log_seq},
        {"drops_total", a.drops_total},
        {"busy_total", a.busy_total},
        {"log_refused", a.log_refused}}},
      {"key", a.key ? json{{"x", crypto::ToHex(std::span<const uint8_t>(a.key->x, 32))},
                           {"y", crypto::ToHex(std::span<const uint8_t>(a.key->y, 32))}}
                    : json(nullptr)},
      {"log_saved_seq", s.log_saved_seq},
      {"agents", agents},
      {"saved_at_ns", s.saved_at_ns},
  };
  return j.dump(2) + "\n";
}

Result<VerifierState> ParseVerifierState(std::string_view text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    const bool at_end = e.byte >= text.size();
    return Status::Error(at_end ? ErrorCode::kTruncated : ErrorCode::kMalformed,
                         std::string(kVerifierFile) + ": " +
                             (at_end ? "truncated JSON" : "not JSON") + " (" + e.what() + ")");
  } catch (const json::exception& e) {
    // e.g. a number beyond double's range (out_of_range 406)
    return Status::Error(ErrorCode::kMalformed,
                         std::string(kVerifierFile) + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) return Bad("", "must be a JSON object");
  VIGIL_RETURN_IF_ERROR(OnlyKeys(j, "", {"format", "version", "instance_id", "anchor", "key",
                                         "log_saved_seq", "agents", "saved_at_ns"}));
  if (!j.contains("format") || j["format"] != kVerifierStateFormat) {
    return Bad("/format", "must be \"" + std::string(kVerifierStateFormat) + "\"");
  }
  if (!j.contains("version") || !j["version"].is_number_integer()) {
    return Bad("/version", "must be an integer");
  }
  if (j["version"] != kVerifierStateVersion) {
    return Status::Error(ErrorCode::kUnsupported,
                         std::string(kVerifierFile) + ": /version " + j["version"].dump() +
                             " is not supported (this build reads " +
                             std::to_string(kVerifierStateVersion) + ")");
  }
  VerifierState s;
  VIGIL_RETURN_IF_ERROR(Hex(j, "", "instance_id", s.anchor.instance_id));
  if (!j.contains("anchor") || !j["anchor"].is_object()) return Bad("/anchor", "must be an object");
  const json& a = j["anchor"];
  VIGIL_RETURN_IF_ERROR(OnlyKeys(a, "/anchor", {"last_seq", "chain_head", "checkpoint_digest",
                                                 "checkpoint_log_seq", "drops_total",
                                                 "busy_total", "log_refused"}));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.last_seq, U64(a, "/anchor", "last_seq"));
  VIGIL_RETURN_IF_ERROR(Hex(a, "/anchor", "chain_head", s.anchor.chain_head));
  VIGIL_RETURN_IF_ERROR(Hex(a, "/anchor", "checkpoint_digest", s.anchor.checkpoint_digest));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.checkpoint_log_seq, U64(a, "/anchor", "checkpoint_log_seq"));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.drops_total, U64(a, "/anchor", "drops_total"));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.busy_total, U64(a, "/anchor", "busy_total"));
  VIGIL_ASSIGN_OR_RETURN(s.anchor.log_refused, U64(a, "/anchor", "log_refused"));
  // Events are anchored only by a checkpoint; a checkpoint may cover none
  // (a heartbeat of a module that committed nothing yet).
  if (s.anchor.last_seq != 0 && s.anchor.checkpoint_log_seq == 0) {
    return Bad("/anchor", "last_seq is set but checkpoint_log_seq is 0 (no checkpoint)");
  }
  if (!j.contains("key")) return Bad("/key", "missing (null when the module has no key)");
  if (!j["key"].is_null()) {
    const json& k = j["key"];
    if (!k.is_object()) return Bad("/key", "must be an object with x and y, or null");
    VIGIL_RETURN_IF_ERROR(OnlyKeys(k, "/key", {"x", "y"}));
    std::array<uint8_t, VIGIL_ECC_COORD_LEN> x{}, y{};
    VIGIL_RETURN_IF_ERROR(Hex(k, "/key", "x", x));
    VIGIL_RETURN_IF_ERROR(Hex(k, "/key", "y", y));
    crypto::EcPoint point;
    std::memcpy(point.x, x.data(), x.size());
    std::memcpy(point.y, y.data(), y.size());
    s.anchor.key = point;
  }
  VIGIL_ASSIGN_OR_RETURN(s.log_saved_seq, U64(j, "", "log_saved_seq"));
  VIGIL_ASSIGN_OR_RETURN(s.saved_at_ns, U64(j, "", "saved_at_ns"));
  if (!j.contains("agents") || !j["agents"].is_object()) return Bad("/agents", "must be an object");
  for (auto it = j["agents"].begin(); it != j["agents"].end(); ++it) {
    const std::string path = "/agents/" + it.key();
    uint64_t id = 0;
    try {
      size_t used = 0;
      id = std::stoull(it.key(), &used, 10);
      if (used != it.key().size() || it.key()[0] == '-' || it.key()[0] == '+') {
        throw std::invalid_argument(it.key());
      }
    } catch (const std::exception&) {
      return Bad(path, "agent ids must be decimal numbers");
    }
    if (id == 0 || id > UINT32_MAX) return Bad(path, "agent id out of range 1..2^32-1");
    if (!it->is_string() || it->get<std::string>().empty() ||
        it->get<std::string>().size() >= VIGIL_NAME_LEN) {
      return Bad(path, "agent name must be a string of 1.." + std::to_string(VIGIL_NAME_LEN - 1) +
                           " bytes");
    }
    s.agent_names[static_cast<uint32_t>(id)] = it->get<std::string>();
  }
  return s;
}

std::string SerializeOpenEvents(const std::vector<records::Record>& events) {
  std::string out;
  for (const records::Record& r : events) {
    out.append(reinterpret_cast<const char*>(r.bytes().data()), r.bytes().size());
  }
  return out;
}

Result<OpenEvents> ParseOpenEvents(std::string_view bytes, uint64_t anchor_seq) {
  OpenEvents out;
  std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  size_t index = 0;
  while (!rest.empty()) {
    auto rec = records::Record::Decode(rest);
    if (!rec.ok()) {
      // The journal is appended without fsync: a crash can leave the last
      // record cut short. Anything else is corruption.
      if (rec.status().code() == ErrorCode::kTruncated) {
        out.dropped_tail_bytes = rest.size();
        break;
      }
      return Status::Error(rec.status().code(), std::string(kOpenEventsFile) + ": record " +
                                                    std::to_string(index) + ": " +
                                                    rec.status().message());
    }
    if (!records::IsEvent(rec->type()) || !rec->committed() || rec->seq() == 0) {
      return Status::Error(ErrorCode::kMalformed,
                           std::string(kOpenEventsFile) + ": record " + std::to_string(index) +
                               " (" + std::string(records::TypeName(rec->type())) + ", seq " +
                               std::to_string(rec->seq()) + ") is not a committed event");
    }
    rest = rest.subspan(rec->bytes().size());
    // Written after verifier.json: a crash between the two leaves events
    // the newer anchor already covers, which are simply not needed.
    if (rec->seq() > anchor_seq) out.events.push_back(std::move(rec).value());
    ++index;
  }
  return out;
}

}  // namespace vigil::daemon
