#include "vigil/fleet/pq.h"

#include <libpq-fe.h>

#include <bit>
#include <climits>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

namespace vigil::fleet {
namespace {

// Type OIDs (src/include/catalog/pg_type.dat; stable across versions).
constexpr unsigned int kBoolOid = 16;
constexpr unsigned int kByteaOid = 17;
constexpr unsigned int kNameOid = 19;
constexpr unsigned int kInt8Oid = 20;
constexpr unsigned int kInt2Oid = 21;
constexpr unsigned int kInt4Oid = 23;
constexpr unsigned int kFloat8Oid = 701;
constexpr unsigned int kTextOid = 25;
constexpr unsigned int kVarcharOid = 1043;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool ConnectionLevel(std::string_view state) {
  return state.size() != 5 || state.substr(0, 2) == "08" || state == "57P01" || state == "57P02" ||
         state == "57P03";
}

// Server notices (NOTICE: relation exists, skipping) are not errors and
// not the caller's output.
void DropNotice(void*, const PGresult*) {}

ErrorCode CodeForSqlState(std::string_view state) {
  if (state.size() != 5) return ErrorCode::kUnavailable;  // no SQLSTATE: the connection
  const std::string_view cls = state.substr(0, 2);
  if (cls == "08" || state == "57P01" || state == "57P02" || state == "57P03") {
    return ErrorCode::kUnavailable;
  }
  if (cls == "40" || cls == "53") return ErrorCode::kUnavailable;
  if (cls == "23") return ErrorCode::kFailedPrecondition;
  if (cls == "22" || cls == "54") return ErrorCode::kInvalidArgument;
  return ErrorCode::kInternal;
}

// The error of a failed statement (or of the connection, without result).
Status PqError(const PGresult* result, const PGconn* conn, std::string_view what) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = result ? PQresultErrorMessage(result) : "";
  if (message.empty() && conn) message = PQerrorMessage(conn);
  if (message.empty()) message = "no result (out of memory?)";
  std::string sqlstate = state ? state : "";
  // A lost connection without SQLSTATE still says so.
  if (sqlstate.empty() && conn && PQstatus(conn) == CONNECTION_BAD) sqlstate = "08006";
  // libpq's own errors carry no SQLSTATE; once a statement was sent, that
  // is the connection failing (libpq may not have marked it BAD yet).
  if (sqlstate.empty() && result && PQresultStatus(result) == PGRES_FATAL_ERROR) {
    sqlstate = "08006";
  }
  return Status::FromPostgres(CodeForSqlState(sqlstate), sqlstate,
                              std::string(what) + ": " + Trim(message) +
                                  (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"));
}

std::string BigEndian(uint64_t v, int bytes) {
  std::string out(static_cast<size_t>(bytes), '\0');
  for (int i = bytes - 1; i >= 0; --i, v >>= 8)
    out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

uint64_t FromBigEndian(std::string_view b) {
  uint64_t v = 0;
  for (const char c : b) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

}  // namespace

// --- Param ---

Param Param::Null() { return Param(); }

Param Param::Int8(int64_t value) {
  Param p;
  p.type_oid_ = kInt8Oid;
  p.null_ = false;
  p.bytes_ = BigEndian(static_cast<uint64_t>(value), 8);
  return p;
}

Param Param::Float8(double value) {
  Param p;
  p.type_oid_ = kFloat8Oid;
  p.null_ = false;
  p.bytes_ = BigEndian(std::bit_cast<uint64_t>(value), 8);
  return p;
}

Param Param::Bool(bool value) {
  Param p;
  p.type_oid_ = kBoolOid;
  p.null_ = false;
  p.bytes_ = std::string(1, value ? '\1' : '\0');
  return p;
}

Param Param::Text(std::string_view value) {
  Param p;
  p.type_oid_ = kTextOid;
  p.null_ = false;
  p.bytes_ = std::string(value);
  return p;
}

Param Param::Bytea(std::span<const uint8_t> value) {
  Param p;
  p.type_oid_ = kByteaOid;
  p.null_ = false;
  p.bytes_.assign(reinterpret_cast<const char*>(value.data()), value.size());
  return p;
}

// --- Rows ---

void Rows::Clear::operator()(pg_result* r) const { PQclear(r); }

Rows::Rows(pg_result* result) : result_(result) {}

int Rows::size() const { return result_ ? PQntuples(result_.get()) : 0; }
int Rows::columns() const { return result_ ? PQnfields(result_.get()) : 0; }

int64_t Rows::affected() const {
  if (!result_) return 0;
  const char* n = PQcmdTuples(result_.get());
  return (n && *n) ? std::strtoll(n, nullptr, 10) : 0;
}

std::string Rows::command_status() const { return result_ ? PQcmdStatus(result_.get()) : ""; }

Result<int> Rows::Column(std::string_view name) const {
  const std::string n(name);
  const int col = result_ ? PQfnumber(result_.get(), n.c_str()) : -1;
  if (col < 0) return Status::Error(ErrorCode::kInvalidArgument, "no column \"" + n + "\"");
  return col;
}

Result<bool> Rows::IsNull(int row, int col) const {
  if (row < 0 || row >= size() || col < 0 || col >= columns()) {
    return Status::Error(ErrorCode::kInvalidArgument, "cell (" + std::to_string(row) + ", " +
                                                          std::to_string(col) + ") out of range (" +
                                                          std::to_string(size()) + " rows, " +
                                                          std::to_string(columns()) + " columns)");
  }
  return PQgetisnull(result_.get(), row, col) == 1;
}

Result<std::string_view> Rows::Cell(int row, int col, std::initializer_list<unsigned int> oids,
                                    const char* type_name) const {
  VIGIL_ASSIGN_OR_RETURN(bool null, IsNull(row, col));
  const std::string name = PQfname(result_.get(), col);
  if (null) return Status::Error(ErrorCode::kInvalidArgument, "column " + name + " is NULL");
  if (PQfformat(result_.get(), col) != 1) {
    return Status::Error(ErrorCode::kInternal, "column " + name + " not in binary format");
  }
  const unsigned int oid = PQftype(result_.get(), col);
  bool match = false;
  for (const unsigned int o : oids) match = match || o == oid;
  if (!match) {
    return Status::Error(
        ErrorCode::kInvalidArgument,
        "column " + name + " (type oid " + std::to_string(oid) + ") is not " + type_name);
  }
  const int len = PQgetlength(result_.get(), row, col);
  return std::string_view(PQgetvalue(result_.get(), row, col), static_cast<size_t>(len));
}

Result<int64_t> Rows::Int8(int row, int col) const {
  VIGIL_ASSIGN_OR_RETURN(std::string_view b,
                         Cell(row, col, {kInt8Oid, kInt4Oid, kInt2Oid}, "an integer"));
  if (b.size() != 8 && b.size() != 4 && b.size() != 2) {
    return Status::Error(ErrorCode::kMalformed,
                         "integer of " + std::to_string(b.size()) + " bytes");
  }
  const uint64_t raw = FromBigEndian(b);
  // Sign-extend the narrower types.
  const int shift = 64 - static_cast<int>(b.size()) * 8;
  return static_cast<int64_t>(raw << shift) >> shift;
}

Result<double> Rows::Float8(int row, int col) const {
  VIGIL_ASSIGN_OR_RETURN(std::string_view b, Cell(row, col, {kFloat8Oid}, "a float8"));
  if (b.size() != 8) {
    return Status::Error(ErrorCode::kMalformed, "float8 of " + std::to_string(b.size()) + " bytes");
  }
  return std::bit_cast<double>(FromBigEndian(b));
}

Result<bool> Rows::Bool(int row, int col) const {
  VIGIL_ASSIGN_OR_RETURN(std::string_view b, Cell(row, col, {kBoolOid}, "a boolean"));
  if (b.size() != 1) return Status::Error(ErrorCode::kMalformed, "boolean of wrong size");
  return b[0] != 0;
}

Result<std::string> Rows::Text(int row, int col) const {
  VIGIL_ASSIGN_OR_RETURN(std::string_view b,
                         Cell(row, col, {kTextOid, kVarcharOid, kNameOid}, "a text"));
  return std::string(b);
}

Result<std::vector<uint8_t>> Rows::Bytea(int row, int col) const {
  VIGIL_ASSIGN_OR_RETURN(std::string_view b, Cell(row, col, {kByteaOid}, "a bytea"));
  return std::vector<uint8_t>(b.begin(), b.end());
}

Result<std::optional<int64_t>> Rows::NullableInt8(int row, int col) const {
  VIGIL_ASSIGN_OR_RETURN(bool null, IsNull(row, col));
  if (null) return std::optional<int64_t>();
  VIGIL_ASSIGN_OR_RETURN(int64_t v, Int8(row, col));
  return std::optional<int64_t>(v);
}

Result<std::optional<std::vector<uint8_t>>> Rows::NullableBytea(int row, int col) const {
  VIGIL_ASSIGN_OR_RETURN(bool null, IsNull(row, col));
  if (null) return std::optional<std::vector<uint8_t>>();
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> v, Bytea(row, col));
  return std::optional<std::vector<uint8_t>>(std::move(v));
}

// --- Connection ---

void Connection::Finish::operator()(pg_conn* c) const { PQfinish(c); }

Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

Result<ConnectOptions> ParseConnInfo(const std::string& conninfo) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> parsed(
      PQconninfoParse(conninfo.c_str(), &error), PQconninfoFree);
  if (!parsed) {
    std::string why = error ? Trim(error) : "out of memory";
    PQfreemem(error);
    return Status::Error(ErrorCode::kInvalidArgument, "connection string: " + why);
  }
  ConnectOptions out;
  out.host.clear();
  for (const PQconninfoOption* o = parsed.get(); o->keyword; ++o) {
    if (!o->val) continue;
    const std::string key = o->keyword, val = o->val;
    if (key == "host") {
      out.host = val;
    } else if (key == "dbname") {
      out.dbname = val;
    } else if (key == "user") {
      out.user = val;
    } else if (key == "application_name") {
      out.application_name = val;
    } else if (key == "port" || key == "connect_timeout") {
      int n = -1;
      try {
        size_t used = 0;
        n = std::stoi(val, &used);
        if (used != val.size()) n = -1;
      } catch (...) {
        n = -1;
      }
      if (n <= 0 || (key == "port" && n > 65535)) {
        return Status::Error(ErrorCode::kInvalidArgument,
                             "connection string: bad " + key + " \"" + val + "\"");
      }
      (key == "port" ? out.port : out.connect_timeout_seconds) = n;
    } else {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "connection string: \"" + key +
                               "\" is not taken here (passwords and TLS settings: libpq's "
                               "environment, PGPASSFILE, PGSSLMODE)");
    }
  }
  if (out.host.empty()) out.host = "/var/run/postgresql";
  return out;
}

Result<Connection> Connection::Open(const ConnectOptions& options) {
  Connection c;
  c.options_ = options;
  VIGIL_RETURN_IF_ERROR(c.Reconnect());
  return c;
}

Status Connection::Reconnect() {
  const std::string port = std::to_string(options_.port);
  const std::string timeout = std::to_string(options_.connect_timeout_seconds);
  const std::string idle = std::to_string(options_.keepalives_idle_seconds);
  const std::string interval = std::to_string(options_.keepalives_interval_seconds);
  const std::string count = std::to_string(options_.keepalives_count);
  const std::string user_timeout = std::to_string(options_.tcp_user_timeout_ms);
  // The session's limits, set at connect (every reconnect too). Only
  // integers go in: nothing a user typed is parsed as an option.
  const std::string session =
      "-c idle_in_transaction_session_timeout=" +
      std::to_string(options_.idle_in_transaction_timeout_ms) +
      " -c lock_timeout=" + std::to_string(options_.lock_timeout_ms) +
      " -c statement_timeout=" + std::to_string(options_.statement_timeout_ms);
  // Keywords, not a conninfo string: no value is parsed as options.
  const char* keys[] = {"host",
                        "port",
                        "dbname",
                        "user",
                        "connect_timeout",
                        "application_name",
                        "client_encoding",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "options",
                        nullptr};
  const char* values[] = {options_.host.c_str(),
                          port.c_str(),
                          options_.dbname.c_str(),
                          options_.user.c_str(),
                          timeout.c_str(),
                          options_.application_name.c_str(),
                          "UTF8",
                          "1",
                          idle.c_str(),
                          interval.c_str(),
                          count.c_str(),
                          user_timeout.c_str(),
                          session.c_str(),
                          nullptr};
  conn_.reset(PQconnectdbParams(keys, values, /*expand_dbname=*/0));
  ++session_;
  in_transaction_ = false;
  broken_ = false;
  if (!conn_) {
    return Status::FromPostgres(ErrorCode::kInternal, "", "PQconnectdbParams: out of memory");
  }
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    Status st = Status::FromPostgres(
        ErrorCode::kUnavailable, "08001",
        "connecting to PostgreSQL at " + options_.host + ": " + Trim(PQerrorMessage(conn_.get())));
    return st;
  }
  PQsetNoticeReceiver(conn_.get(), DropNotice, nullptr);
  return Status::Ok();
}

bool Connection::lost() const {
  return broken_ || !conn_ || PQstatus(conn_.get()) == CONNECTION_BAD;
}

int Connection::backend_pid() const { return conn_ ? PQbackendPID(conn_.get()) : 0; }

Result<Rows> Connection::ExecOnce(std::string_view sql, std::span<const Param> params) {
  if (!conn_) return Status::FromPostgres(ErrorCode::kUnavailable, "08003", "no connection");
  if (params.size() > 65535) {
    return Status::Error(ErrorCode::kInvalidArgument, "more than 65535 parameters");
  }
  std::vector<unsigned int> types;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const Param& p : params) {
    if (p.bytes().size() > static_cast<size_t>(INT_MAX)) {
      return Status::Error(ErrorCode::kInvalidArgument, "parameter larger than 2 GiB");
    }
    types.push_back(p.type_oid());
    values.push_back(p.is_null() ? nullptr : p.bytes().data());
    lengths.push_back(static_cast<int>(p.bytes().size()));
    formats.push_back(1);
  }
  const std::string text(sql);
  Rows rows(PQexecParams(conn_.get(), text.c_str(), static_cast<int>(params.size()), types.data(),
                         values.data(), lengths.data(), formats.data(), /*resultFormat=*/1));
  PGresult* r = rows.result_.get();
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    // The statement's start says which one failed (constant text, no values).
    const std::string what = text.size() > 60 ? text.substr(0, 60) + "..." : text;
    Status error = PqError(r, conn_.get(), what);
    if (ConnectionLevel(error.sqlstate())) broken_ = true;
    return error;
  }
  return rows;
}

Result<Rows> Connection::Exec(std::string_view sql, std::span<const Param> params, Retry retry) {
  if (in_transaction_) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "Connection::Exec while a transaction is open (use the Transaction)");
  }
  // A session known lost is reopened before anything is sent: nothing was
  // open on it, so this is safe for any statement. Only sending a statement
  // a second time needs it to be idempotent.
  if (lost()) VIGIL_RETURN_IF_ERROR(Reconnect());
  auto rows = ExecOnce(sql, params);
  if (!rows.ok() && lost() && retry == Retry::kOnceIfIdempotent) {
    VIGIL_RETURN_IF_ERROR(Reconnect());
    return ExecOnce(sql, params);
  }
  return rows;
}

Status Connection::ExecScript(const char* sql) {
  Rows rows(PQexec(conn_.get(), sql));
  PGresult* r = rows.result_.get();
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Status error = PqError(r, conn_.get(), "migration script");
    if (ConnectionLevel(error.sqlstate())) broken_ = true;
    return error;
  }
  return Status::Ok();
}

Result<Transaction> Connection::Begin() {
  if (in_transaction_) {
    return Status::Error(ErrorCode::kFailedPrecondition, "a transaction is open already");
  }
  if (lost()) VIGIL_RETURN_IF_ERROR(Reconnect());
  auto begun = ExecOnce("BEGIN", {});
  if (!begun.ok() && lost()) {
    // The session died before BEGIN (e.g. the server restarted since the
    // last statement): nothing of ours was running on it.
    VIGIL_RETURN_IF_ERROR(Reconnect());
    begun = ExecOnce("BEGIN", {});
  }
  if (!begun.ok()) return begun.status();
  in_transaction_ = true;
  return Transaction(this);
}

// --- Transaction ---

Transaction::Transaction(Connection* connection)
    : connection_(connection), session_(connection->session()) {}

Transaction::Transaction(Transaction&& other) noexcept
    : connection_(other.connection_), session_(other.session_), open_(other.open_) {
  other.open_ = false;
}

Transaction::~Transaction() {
  if (open_) (void)Rollback();
}

Result<Rows> Transaction::Exec(std::string_view sql, std::span<const Param> params) {
  if (!open_) return Status::Error(ErrorCode::kFailedPrecondition, "transaction is closed");
  if (connection_->session() != session_ || connection_->lost()) {
    return Status::FromPostgres(ErrorCode::kUnavailable, "08006",
                                "the connection was lost: the transaction was rolled back");
  }
  return connection_->ExecOnce(sql, params);
}

Status Transaction::Commit() {
  if (!open_) return Status::Error(ErrorCode::kFailedPrecondition, "transaction is closed");
  open_ = false;
  connection_->in_transaction_ = false;
  if (connection_->session() != session_ || connection_->lost()) {
    return Status::FromPostgres(ErrorCode::kUnavailable, "08006",
                                "the connection was lost: the transaction was rolled back");
  }
  auto done = connection_->ExecOnce("COMMIT", {});
  if (!done.ok()) {
    if (connection_->lost()) {
      return Status::FromPostgres(ErrorCode::kUnavailable, "08007",
                                  "the connection was lost during COMMIT: outcome unknown (" +
                                      done.status().message() + ")");
    }
    return done.status();
  }
  // A COMMIT of a transaction that had failed is answered ROLLBACK.
  if (done->command_status() == "ROLLBACK") {
    return Status::FromPostgres(ErrorCode::kFailedPrecondition, "25P02",
                                "COMMIT of a failed transaction: rolled back");
  }
  return Status::Ok();
}

Status Transaction::Rollback() {
  if (!open_) return Status::Ok();
  open_ = false;
  connection_->in_transaction_ = false;
  if (connection_->session() != session_ || connection_->lost()) return Status::Ok();
  auto done = connection_->ExecOnce("ROLLBACK", {});
  return done.ok() ? Status::Ok() : done.status();
}

Status RunScript(Transaction& tx, const char* sql) {
  if (!tx.open_) return Status::Error(ErrorCode::kFailedPrecondition, "transaction is closed");
  if (tx.connection_->session() != tx.session_ || tx.connection_->lost()) {
    return Status::FromPostgres(ErrorCode::kUnavailable, "08006", "the connection was lost");
  }
  return tx.connection_->ExecScript(sql);
}

}  // namespace vigil::fleet
