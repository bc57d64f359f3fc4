// A real PostgreSQL 15 server for a test (Debian's postgresql-15), in a
// temporary directory, stopped and removed after. No mock.
//
// The server listens only on a UNIX socket in that directory (no TCP) and
// trusts local connections (nobody else can reach the directory: 0700).
// fsync is off (a test does not survive a power cut); synchronous_commit
// stays on, so a committed transaction survives a crash of the server
// (Crash(): pg_ctl stop -m immediate, recovery at the next start).
//
// initdb refuses to run as root. As root, the server runs as the
// `postgres` system account, which the postgresql-common package creates
// with the server (so nothing else needs creating, and no shared account
// like `nobody` owns the data); as any other user, as that user. The test
// itself stays root and connects through the socket as the cluster's
// superuser "vigil".
//
// initdb runs once per test process (a template cluster, ~1.5 s); each
// server starts on a copy of it (cp -a, then pg_ctl start).
// A missing PostgreSQL is a test failure, never a skip.
#ifndef VIGIL_TESTS_UNIT_PG_FIXTURE_H_
#define VIGIL_TESTS_UNIT_PG_FIXTURE_H_

#include <gtest/gtest.h>

#include <string>

#include "vigil/fleet/pq.h"

namespace vigil::testing {

// Thread-safety: not thread-safe; one per test.
class PostgresServer {
 public:
  PostgresServer() = default;
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // A fresh cluster in a new temporary directory, started.
  ::testing::AssertionResult Start();
  // pg_ctl stop -m fast (clients are disconnected, everything committed is
  // on disk), then pg_ctl start on the same data.
  ::testing::AssertionResult Restart();
  // pg_ctl stop -m immediate: the server dies without a checkpoint (a
  // crash); Resume() starts it again and it recovers from its WAL.
  ::testing::AssertionResult Crash();
  ::testing::AssertionResult Resume();
  // pg_ctl stop -m fast and remove the directory.
  ::testing::AssertionResult Stop();

  // Where to connect (database "postgres" unless named).
  fleet::ConnectOptions Options(const std::string& dbname = "postgres") const;
  const std::string& dir() const { return dir_; }
  bool running() const { return running_; }
  // Seconds the last Start (copy + start) and Stop took.
  double start_seconds() const { return start_seconds_; }
  double stop_seconds() const { return stop_seconds_; }

 private:
  ::testing::AssertionResult PgCtl(const std::string& action, const std::string& mode);
  std::string dir_;
  bool running_ = false;
  double start_seconds_ = 0;
  double stop_seconds_ = 0;
};

// A test with its own server, started in SetUp and stopped in TearDown.
class PostgresFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  PostgresServer server_;
};

}  // namespace vigil::testing

#endif  // VIGIL_TESTS_UNIT_PG_FIXTURE_H_
