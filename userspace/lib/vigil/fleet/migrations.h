// The fleet database's schema as numbered migrations embedded in the
// binary. Migrate applies the missing ones in order, each in its own
// transaction under a transaction-scoped advisory lock (two verifiers
// starting together apply each migration once), and records each in
// schema_migrations with the SHA-256 of its text. It refuses a database
// whose schema is newer than this binary knows (kIncompatible), and one
// where a migration this binary knows was recorded with other text.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_FLEET_MIGRATIONS_H_
#define VIGIL_USERSPACE_LIB_VIGIL_FLEET_MIGRATIONS_H_

#include <cstdint>
#include <span>

#include "vigil/fleet/pq.h"
#include "vigil/status.h"

namespace vigil::fleet {

struct Migration {
  int64_t version;   // 1, 2, ... without gaps
  const char* name;  // what it does, one line
  const char* sql;   // constant statements, run with RunScript
};

// All migrations this binary knows, in order.
std::span<const Migration> Migrations();
// The newest version in Migrations().
int64_t LatestSchemaVersion();

// The key of the advisory lock migrations hold ("vigil" in ASCII).
inline constexpr int64_t kMigrationLockKey = 0x766967696c;

// Brings the database to `target` (the migrations up to it that it lacks).
// Idempotent. A target below what is applied changes nothing (migrations
// only go forward).
Status Migrate(Connection& connection, int64_t target = LatestSchemaVersion());
// The newest applied version (0: none).
Result<int64_t> SchemaVersion(Connection& connection);

}  // namespace vigil::fleet

#endif  // VIGIL_USERSPACE_LIB_VIGIL_FLEET_MIGRATIONS_H_
