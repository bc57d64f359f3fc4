// SPDX-License-Identifier: GPL-2.0
// libFuzzer target: the files vigild reloads after a restart, parsed from
// arbitrary bytes (vigil::daemon in userspace/vigild/state.cc). The first
// byte picks the file: bit 7 set, the rest is open-events.bin and the low 7
// bits are the anchor seq; 0x40, the rest is a saved log of the instance
// whose id is sixteen 0x5a bytes (userspace/lib/vigil/sim/module_sim.h), scanned from
// memory and from a file in pieces (the two must agree); otherwise the
// rest is verifier.json.
// Invariants beyond "no crash, leak or UB":
// a refusal carries an error code;
// an accepted file re-serializes to one that parses to an equal result, and
// serializing that again gives the same bytes; a saved log's complete part
// scans again to the same result with nothing cut.
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "state.h"
#include "vigil/records.h"

namespace {

using vigil::daemon::VerifierState;

template <typename T>
bool Accepted(const vigil::Result<T>& result) {
  if (!result.ok() && result.status().ok()) std::abort();
  return result.ok();
}

bool SameAnchor(const vigil::verify::Anchor& a, const vigil::verify::Anchor& b) {
  return a.instance_id == b.instance_id && a.last_seq == b.last_seq &&
         a.chain_head == b.chain_head && a.checkpoint_digest == b.checkpoint_digest &&
         a.checkpoint_log_seq == b.checkpoint_log_seq && a.drops_total == b.drops_total &&
         a.busy_total == b.busy_total && a.log_refused == b.log_refused &&
         a.key.has_value() == b.key.has_value() &&
         (!a.key || std::memcmp(&*a.key, &*b.key, sizeof(*a.key)) == 0);
}

bool SameState(const VerifierState& a, const VerifierState& b) {
  return SameAnchor(a.anchor, b.anchor) && a.log_saved_seq == b.log_saved_seq &&
         a.agent_names == b.agent_names && a.saved_at_ns == b.saved_at_ns;
}

vigil::Result<VerifierState> Parse(std::string_view text) {
  return vigil::daemon::ParseVerifierState(text);
}

void VerifierJson(std::string_view text) {
  const vigil::Result<VerifierState> state = Parse(text);
  if (!Accepted(state)) return;
  const std::string saved = vigil::daemon::SerializeVerifierState(*state);
  const vigil::Result<VerifierState> again = vigil::daemon::ParseVerifierState(saved);
  if (!again.ok() || !SameState(*state, *again)) std::abort();
  if (vigil::daemon::SerializeVerifierState(*again) != saved) std::abort();
}

bool SameRecords(const std::vector<vigil::records::Record>& a,
                 const std::vector<vigil::records::Record>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto x = a[i].bytes();
    const auto y = b[i].bytes();
    if (x.size() != y.size() || std::memcmp(x.data(), y.data(), x.size()) != 0) return false;
  }
  return true;
}

void OpenEvents(std::string_view bytes, uint64_t anchor_seq) {
  const vigil::Result<vigil::daemon::OpenEvents> open =
      vigil::daemon::ParseOpenEvents(bytes, anchor_seq);
  if (!Accepted(open)) return;
  for (const vigil::records::Record& r : open->events) {
    if (!r.committed() || !vigil::records::IsEvent(r.type()) || r.seq() <= anchor_seq) {
      std::abort();
    }
  }
  // A journal re-written from what was read has no cut-short tail.
  const std::string saved = vigil::daemon::SerializeOpenEvents(open->events);
  if (saved.size() + open->dropped_tail_bytes > bytes.size()) std::abort();
  const vigil::Result<vigil::daemon::OpenEvents> again =
      vigil::daemon::ParseOpenEvents(saved, anchor_seq);
  if (!again.ok() || again->dropped_tail_bytes != 0 || !SameRecords(open->events, again->events)) {
    std::abort();
  }
  if (vigil::daemon::SerializeOpenEvents(again->events) != saved) std::abort();
}

void SavedLog(std::string_view bytes) {
  std::array<uint8_t, VIGIL_ID_LEN> instance;
  instance.fill(0x5a);
  const vigil::Result<vigil::daemon::SavedLog> scan =
      vigil::daemon::ScanSavedLog(bytes, instance);
  // The file scanner, in pieces that split records anywhere, agrees.
  const int fd = ::memfd_create("saved-log", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
      ::lseek(fd, 0, SEEK_SET) != 0) {
    std::abort();
  }
  const vigil::Result<vigil::daemon::SavedLog> from_file =
      vigil::daemon::ScanSavedLogFile(fd, instance, 1 + bytes.size() % 61);
  ::close(fd);
  if (from_file.ok() != scan.ok()) std::abort();
  if (!scan.ok() && (from_file.status().code() != scan.status().code() ||
                     from_file.status().message() != scan.status().message())) {
    std::abort();
  }
  if (scan.ok() && (from_file->complete_bytes != scan->complete_bytes ||
                    from_file->last_seq != scan->last_seq || from_file->records != scan->records ||
                    from_file->scanned_bytes != bytes.size())) {
    std::abort();
  }
  if (!Accepted(scan)) return;
  if (scan->complete_bytes > bytes.size() || (scan->records == 0) != (scan->complete_bytes == 0)) {
    std::abort();
  }
  const vigil::Result<vigil::daemon::SavedLog> again =
      vigil::daemon::ScanSavedLog(bytes.substr(0, scan->complete_bytes), instance);
  if (!again.ok() || again->complete_bytes != scan->complete_bytes ||
      again->last_seq != scan->last_seq || again->records != scan->records) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 0x80) {
    OpenEvents(rest, data[0] & 0x7f);
  } else if (data[0] == 0x40) {
    SavedLog(rest);
  } else {
    VerifierJson(rest);
  }
  return 0;
}
