// RAII over libpq (PostgreSQL's C client): a connection, parameterized
// statements, typed result rows and transactions. SQL text is always a
// constant of the program; values travel only as parameters (PQexecParams,
// binary format with an explicit type), never spliced into the text.
//
// Errors are vigil::Status with origin kPostgres and the SQLSTATE kept
// (Status::sqlstate()): class 08 and 57P0x (connection, shutdown) map to
// kUnavailable, 23 (integrity) to kFailedPrecondition, 22 (data) to
// kInvalidArgument, 40 (serialization, deadlock) to kUnavailable, the rest
// to kInternal.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_FLEET_PQ_H_
#define VIGIL_USERSPACE_LIB_VIGIL_FLEET_PQ_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/status.h"

struct pg_conn;
struct pg_result;

namespace vigil::fleet {

// Where the database is. `host` is a host name or, starting with '/', the
// directory of the server's UNIX socket.
struct ConnectOptions {
  std::string host;
  int port = 5432;
  std::string dbname;
  std::string user;
  int connect_timeout_seconds = 5;
  std::string application_name = "vigil";
  // A peer that hangs (a paused VM, a partition) must not hold a node's
  // rows for hours. TCP keepalives and a send timeout find a dead server or
  // client on TCP (ignored on a Unix socket); the session limits, sent at
  // connect (libpq "options": -c ...), bound what a hung verifier holds: the
  // server ends a session idle inside a transaction after
  // idle_in_transaction_timeout_ms (its locks released, its transaction
  // rolled back). lock_timeout_ms is longer than that, so a verifier waiting
  // behind a hung one outlasts it. 0 turns a limit off.
  int keepalives_idle_seconds = 30;
  int keepalives_interval_seconds = 10;
  int keepalives_count = 3;
  int tcp_user_timeout_ms = 60000;
  int idle_in_transaction_timeout_ms = 30000;
  int lock_timeout_ms = 45000;
  int statement_timeout_ms = 60000;
};

// A libpq connection string ("host=/run/postgresql dbname=vigil user=vigil",
// or a postgresql:// URI), parsed by libpq (PQconninfoParse) into the
// options above. Keywords beyond host, port, dbname, user, connect_timeout
// and application_name are refused (kInvalidArgument): a password or TLS
// settings come from libpq's environment (PGPASSFILE, PGSSLMODE ...), never
// from a command line that `ps` shows.
Result<ConnectOptions> ParseConnInfo(const std::string& conninfo);

// One statement parameter, bound in binary with its type; build it with
// the named factories (no implicit conversions: an int never turns into a
// bool or a text).
class Param {
 public:
  static Param Null();  // an untyped NULL (the server infers its type)
  static Param Int8(int64_t value);
  static Param Bool(bool value);
  static Param Float8(double value);  // IEEE 754 double precision
  static Param Text(std::string_view value);  // UTF-8; a NUL byte is refused by the server
  static Param Bytea(std::span<const uint8_t> value);

  // For libpq.
  unsigned int type_oid() const { return type_oid_; }
  bool is_null() const { return null_; }
  const std::string& bytes() const { return bytes_; }

 private:
  unsigned int type_oid_ = 0;
  bool null_ = true;
  std::string bytes_;
};

// A statement's result rows (binary format), owned. Every getter checks the
// row and column bounds and the column's type: a NULL, a wrong column or a
// wrong type is an error (kInvalidArgument / kMalformed), never UB.
// Thread-safety: const methods safe to call concurrently.
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* result);
  Rows(Rows&&) noexcept = default;
  Rows& operator=(Rows&&) noexcept = default;

  int size() const;          // rows
  int columns() const;       // columns
  int64_t affected() const;  // rows an INSERT/UPDATE/DELETE touched
  Result<int> Column(std::string_view name) const;
  std::string command_status() const;  // "UPDATE 1", "COMMIT", "ROLLBACK"

  Result<bool> IsNull(int row, int col) const;
  Result<int64_t> Int8(int row, int col) const;  // int8, int4 or int2
  Result<bool> Bool(int row, int col) const;
  Result<double> Float8(int row, int col) const;  // float8
  Result<std::string> Text(int row, int col) const;  // text, varchar, name
  Result<std::vector<uint8_t>> Bytea(int row, int col) const;
  // The same, with NULL as nullopt.
  Result<std::optional<int64_t>> NullableInt8(int row, int col) const;
  Result<std::optional<std::vector<uint8_t>>> NullableBytea(int row, int col) const;

 private:
  friend class Connection;
  // The cell's bytes after the bounds, NULL and type checks.
  Result<std::string_view> Cell(int row, int col, std::initializer_list<unsigned int> oids,
                                const char* type_name) const;
  struct Clear {
    void operator()(pg_result* r) const;
  };
  std::unique_ptr<pg_result, Clear> result_;
};

class Transaction;

// Whether a statement may run again after the connection was lost and
// reopened: only when it ran outside a transaction and running it twice is
// harmless (a read, an idempotent write).
enum class Retry { kNever, kOnceIfIdempotent };

// One connection. Move-only; a Transaction borrows it (it must outlive the
// transaction and not move meanwhile).
// Thread-safety: not thread-safe (libpq: one thread per connection).
class Connection {
 public:
  static Result<Connection> Open(const ConnectOptions& options);
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Runs one statement outside an explicit transaction (autocommit).
  // Refused while a Transaction is open on this connection.
  Result<Rows> Exec(std::string_view sql, std::span<const Param> params = {},
                    Retry retry = Retry::kNever);
  // BEGIN (READ COMMITTED). A connection found lost is reopened and BEGIN
  // sent again once: nothing ran on the lost session that could be lost.
  Result<Transaction> Begin();

  // Drops the session and opens a new one (same options).
  Status Reconnect();
  // The session was lost (server restart, network): the next Begin or
  // retryable Exec reconnects.
  bool lost() const;
  // Counts sessions: a Transaction refuses to run on a later one.
  uint64_t session() const { return session_; }
  // The server's process id of this session (tests terminate it).
  int backend_pid() const;

 private:
  friend class Transaction;
  friend Status RunScript(Transaction& tx, const char* sql);
  Connection() = default;
  Result<Rows> ExecOnce(std::string_view sql, std::span<const Param> params);
  Status ExecScript(const char* sql);

  struct Finish {
    void operator()(pg_conn* c) const;
  };
  ConnectOptions options_;
  std::unique_ptr<pg_conn, Finish> conn_;
  uint64_t session_ = 0;
  bool in_transaction_ = false;
  // The last statement failed at the connection level (no SQLSTATE from
  // the server, class 08, or a shutdown): libpq does not always say BAD.
  bool broken_ = false;
};

// An open transaction; rolled back on destruction unless committed.
// Thread-safety: not thread-safe.
class Transaction {
 public:
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  // Runs one statement in the transaction; kUnavailable if the session it
  // began on was lost (the server rolled the transaction back).
  Result<Rows> Exec(std::string_view sql, std::span<const Param> params = {});
  // COMMIT. A connection lost during COMMIT is kUnavailable with "outcome
  // unknown": the caller re-reads (a version column tells).
  Status Commit();
  Status Rollback();

 private:
  friend class Connection;
  // Runs a constant multi-statement script (migrations only).
  friend Status RunScript(Transaction& tx, const char* sql);
  explicit Transaction(Connection* connection);
  Connection* connection_;
  uint64_t session_;
  bool open_ = true;
};

// Runs constant SQL text holding several statements (PQexec, no parameters)
// inside `tx`. For the embedded migrations only: nothing variable may reach
// it.
Status RunScript(Transaction& tx, const char* sql);

}  // namespace vigil::fleet

#endif  // VIGIL_USERSPACE_LIB_VIGIL_FLEET_PQ_H_
