#include "vigil/records.h"

#include <cstddef>
#include <string>

namespace vigil::records {

std::string_view TypeName(uint16_t type) {
  switch (type) {
    case VIGIL_EV_EXEC:
      return "exec";
    case VIGIL_EV_EXIT:
      return "exit";
    case VIGIL_EV_USER:
      return "user";
    case VIGIL_EV_FORK:
      return "fork";
    case VIGIL_EV_AGENT:
      return "agent";
    case VIGIL_EV_SAMPLE:
      return "sample";
    case VIGIL_LOG_MEASURE:
      return "measure";
    case VIGIL_LOG_KEY:
      return "key";
    case VIGIL_LOG_CHECKPOINT:
      return "checkpoint";
    case VIGIL_LOG_SIGNATURE:
      return "signature";
    case VIGIL_LOG_EVENT:
      return "event";
    case VIGIL_LOG_BASE:
      return "base";
    default:
      return "unknown";
  }
}

bool IsEvent(uint16_t type) { return type >= 1 && type <= VIGIL_EV_TYPE_MAX; }

Result<Record> Record::Decode(std::span<const uint8_t> buf) {
  vigil_rec_hdr hdr;
  if (buf.size() < sizeof(hdr)) {
    return Status::Error(ErrorCode::kTruncated, "record header needs " +
                                                    std::to_string(sizeof(hdr)) + " bytes, have " +
                                                    std::to_string(buf.size()));
  }
  std::memcpy(&hdr, buf.data(), sizeof(hdr));
  const std::optional<size_t> expected = ExpectedSize(hdr.type);
  if (!expected) {
    return Status::Error(ErrorCode::kUnsupported,
                         "unknown record type " + std::to_string(hdr.type));
  }
  const uint16_t want_version = hdr.type == VIGIL_LOG_CHECKPOINT ? VIGIL_CHECKPOINT_VERSION : 1;
  if (hdr.version != want_version) {
    return Status::Error(ErrorCode::kUnsupported,
                         std::string(TypeName(hdr.type)) + " record version " +
                             std::to_string(hdr.version) + " is not supported");
  }
  if (hdr.size != *expected) {
    return Status::Error(ErrorCode::kMalformed, std::string(TypeName(hdr.type)) + " record size " +
                                                    std::to_string(hdr.size) + ", expected " +
                                                    std::to_string(*expected));
  }
  if (hdr.size > buf.size()) {
    return Status::Error(ErrorCode::kTruncated, std::string(TypeName(hdr.type)) + " record needs " +
                                                    std::to_string(hdr.size) + " bytes, have " +
                                                    std::to_string(buf.size()));
  }
  return Result<Record>(std::in_place, Private{}, hdr, buf.first(hdr.size));
}

Result<std::vector<Record>> DecodeStream(std::span<const uint8_t> buf) {
  StreamPrefix prefix = DecodeStreamPrefix(buf);
  if (!prefix.stopped.ok()) return prefix.stopped;
  return std::move(prefix.records);
}

StreamPrefix DecodeStreamPrefix(std::span<const uint8_t> buf) {
  StreamPrefix out;
  size_t off = 0;
  while (off < buf.size()) {
    Result<Record> rec = Record::Decode(buf.subspan(off));
    if (!rec.ok()) {
      out.stopped = Status::Error(rec.status().code(), "at offset " + std::to_string(off) + ": " +
                                                           rec.status().message());
      break;
    }
    off += rec->bytes().size();
    out.records.push_back(std::move(rec).value());
  }
  return out;
}

Result<Record> EventFromLogCopy(const Record& log_event) {
  if (log_event.type() != VIGIL_LOG_EVENT) {
    return Status::Error(ErrorCode::kInvalidArgument, "not a LOG_EVENT record");
  }
  const std::span<const uint8_t> body =
      log_event.bytes().subspan(offsetof(vigil_log_event, ev), sizeof(vigil_ev_user));
  VIGIL_ASSIGN_OR_RETURN(Record ev, Record::Decode(body));
  if (ev.type() != VIGIL_EV_USER) {
    return Status::Error(ErrorCode::kMalformed, "LOG_EVENT carries a " +
                                                    std::string(TypeName(ev.type())) +
                                                    " record, not a user event");
  }
  return ev;
}

}  // namespace vigil::records
