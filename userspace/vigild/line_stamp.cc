#include "line_stamp.h"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "vigil/format.h"

namespace vigil::daemon {
namespace {

constexpr uint64_t kNsPerS = 1'000'000'000;

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// The first line of a small file, without its newline; nullopt (and why) when
// it cannot be read.
std::optional<std::string> FirstLine(const std::string& path, std::vector<std::string>& problems) {
  std::ifstream in(path);
  if (!in) {
    problems.push_back(path + " cannot be read");
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line, '\n');
  if (line.size() > 64) line.resize(64);  // both formats are shorter
  std::transform(line.begin(), line.end(), line.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return line;
}

std::string SecondPrefix(uint64_t sec) {
  const time_t t = static_cast<time_t>(sec);
  struct tm tm_utc;
  char buf[32];
  if (gmtime_r(&t, &tm_utc) == nullptr ||
      std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm_utc) == 0) {
    return "1970-01-01T00:00:00";
  }
  return buf;
}

}  // namespace

HostIdentity ReadHostIdentity(const std::string& machine_id_path, const std::string& boot_id_path) {
  HostIdentity id;
  if (auto m = FirstLine(machine_id_path, id.problems)) {
    if (m->size() == 32 && std::all_of(m->begin(), m->end(), IsHex)) {
      id.host_id = *m;
    } else {
      id.problems.push_back(machine_id_path + " does not hold 32 hex digits");
    }
  }
  if (auto b = FirstLine(boot_id_path, id.problems)) {
    bool ok = b->size() == 36;
    for (size_t i = 0; ok && i < b->size(); ++i) {
      ok = (i == 8 || i == 13 || i == 18 || i == 23) ? (*b)[i] == '-' : IsHex((*b)[i]);
    }
    if (ok) {
      id.boot_id = *b;
    } else {
      id.problems.push_back(boot_id_path + " does not hold a UUID");
    }
  }
  return id;
}

uint64_t RealtimeNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerS + static_cast<uint64_t>(ts.tv_nsec);
}

std::string Rfc3339Utc(uint64_t real_ns) {
  char frac[16];
  std::snprintf(frac, sizeof(frac), ".%09lluZ", static_cast<unsigned long long>(real_ns % kNsPerS));
  return SecondPrefix(real_ns / kNsPerS) + frac;
}

LineStamper::LineStamper(const HostIdentity& identity, std::function<uint64_t()> clock)
    : clock_(std::move(clock)) {
  // The values are validated hex and dashes; dumped anyway so the JSON
  // stays right whatever they hold.
  const nlohmann::json host = identity.host_id ? nlohmann::json(*identity.host_id) : nullptr;
  const nlohmann::json boot = identity.boot_id ? nlohmann::json(*identity.boot_id) : nullptr;
  identity_ = ",\"host_id\":" + host.dump() + ",\"boot_id\":" + boot.dump();
}

void LineStamper::Stamp(std::string& line) {
  if (line.size() < 2 || line.front() != '{' || line.back() != '}') return;
  const uint64_t now = clock_();
  const uint64_t sec = now / kNsPerS;
  if (sec != cached_sec_) {
    cached_sec_ = sec;
    cached_prefix_ = SecondPrefix(sec);
  }
  // ".NNNNNNNNNZ\"" by hand: snprintf cost more than the rest of the stamp.
  char frac[12] = {'.', '0', '0', '0', '0', '0', '0', '0', '0', '0', 'Z', '"'};
  for (uint64_t ns = now % kNsPerS, i = 9; ns != 0; ns /= 10, --i) {
    frac[i] = static_cast<char>('0' + ns % 10);
  }
  line.pop_back();  // the closing brace
  if (line.size() > 1) line += ',';
  line += "\"time\":\"";
  line += cached_prefix_;
  line.append(frac, sizeof(frac));
  line += identity_;
  line += '}';
}

LineWriter::LineWriter(std::ostream& out, std::optional<LineStamper> stamper)
    : out_(out), stamper_(std::move(stamper)) {
  pending_.reserve(kChunkBytes + 4096);
}

void LineWriter::Write(std::string& line) {
  if (stamper_) stamper_->Stamp(line);
  pending_ += line;
  pending_ += '\n';
  if (pending_.size() >= kChunkBytes) Flush();
}

void LineWriter::WriteRecord(const records::Record& rec) {
  record_line_.clear();
  format::AppendRecordJson(rec, record_line_);
  Write(record_line_);
}

void LineWriter::Flush() {
  if (pending_.empty()) return;
  out_.write(pending_.data(), static_cast<std::streamsize>(pending_.size()));
  pending_.clear();
}

}  // namespace vigil::daemon
