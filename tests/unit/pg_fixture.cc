#include "pg_fixture.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

extern char** environ;

namespace vigil::testing {
namespace {

// Debian's layout; VIGIL_PG_BINDIR overrides it.
std::string BinDir() {
  const char* env = std::getenv("VIGIL_PG_BINDIR");
  return env ? env : "/usr/lib/postgresql/15/bin";
}

struct RunUser {
  bool drop = false;  // running as root: become `postgres`
  uid_t uid = 0;
  gid_t gid = 0;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Who runs initdb and the server; fails when root and `postgres` is missing.
::testing::AssertionResult ServerUser(RunUser* out) {
  if (::geteuid() != 0) return ::testing::AssertionSuccess();
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r("postgres", &pw, buf.data(), buf.size(), &found) != 0 || !found) {
    return ::testing::AssertionFailure()
           << "running as root, and there is no `postgres` account to run PostgreSQL as "
              "(initdb refuses root): install postgresql-15 (scripts/deps)";
  }
  out->drop = true;
  out->uid = pw.pw_uid;
  out->gid = pw.pw_gid;
  return ::testing::AssertionSuccess();
}

// Runs `args` (args[0] a full path) as `user` in `cwd`, stdout and stderr
// appended to `log`; its exit status, or -1.
int Run(const RunUser& user, std::vector<std::string> args, const std::string& cwd,
        const std::string& log) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // A small fixed environment: no PG* variable of the caller leaks in.
  std::string home = "HOME=" + cwd;
  char path[] = "PATH=/usr/bin:/bin";
  char lc[] = "LC_ALL=C";
  char* envp[] = {path, lc, home.data(), nullptr};
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || ::dup2(fd, 1) < 0 || ::dup2(fd, 2) < 0) ::_exit(126);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (user.drop) {
      if (::setgroups(1, &user.gid) != 0 || ::setgid(user.gid) != 0 || ::setuid(user.uid) != 0) {
        ::_exit(125);
      }
    }
    if (::chdir(cwd.c_str()) != 0) ::_exit(124);
    ::execve(argv[0], argv.data(), envp);
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A directory of `user`'s, 0700, under /tmp.
::testing::AssertionResult MakeDir(const RunUser& user, const char* prefix, std::string* out) {
  std::string templ = std::string("/tmp/") + prefix + "XXXXXX";
  if (!::mkdtemp(templ.data())) return ::testing::AssertionFailure() << "mkdtemp failed";
  if (user.drop && ::chown(templ.c_str(), user.uid, user.gid) != 0) {
    return ::testing::AssertionFailure() << "chown " << templ << " failed";
  }
  *out = templ;
  return ::testing::AssertionSuccess();
}

constexpr char kTestConf[] =
    "\n# vigil tests\nlisten_addresses = ''\nfsync = off\nfull_page_writes = off\n"
    "shared_buffers = 16MB\nmax_connections = 30\nlog_min_messages = warning\n";

// One initdb, copied for each server. With VIGIL_PG_TEMPLATE_CACHE (a path
// in the build tree, set by CMake) the template is kept there, keyed by the
// server's directory, the settings and the user, and shared by the test
// processes ctest starts (one per test): made in /tmp, copied in under a
// temporary name and renamed, so a process sees a whole template or none.
class TemplateCluster {
 public:
  ~TemplateCluster() { RemoveScratch(); }
  ::testing::AssertionResult Ensure(const RunUser& user) {
    if (!data_.empty()) return ::testing::AssertionSuccess();
    std::string cache;
#ifdef VIGIL_PG_TEMPLATE_CACHE
    cache = std::string(VIGIL_PG_TEMPLATE_CACHE) + "-" +
            std::to_string(std::hash<std::string>{}(BinDir() + kTestConf) % 1000000007u) + "-" +
            std::to_string(user.uid);
    if (UsableCache(cache, user)) {
      data_ = cache + "/data";
      return ::testing::AssertionSuccess();
    }
#endif
    auto made = InitDb(user);
    if (!made) return made;
    data_ = scratch_ + "/data";
    if (cache.empty()) return ::testing::AssertionSuccess();
    // Publish it; on any failure keep using the scratch copy.
    const std::string staging = cache + ".tmp." + std::to_string(::getpid());
    std::error_code ec;
    std::filesystem::remove_all(staging, ec);
    if (::mkdir(staging.c_str(), 0700) == 0 &&
        Run(RunUser{}, {"/bin/cp", "-a", data_, staging + "/data"}, scratch_,
            scratch_ + "/cp.log") == 0 &&
        ::rename(staging.c_str(), cache.c_str()) == 0) {
      data_ = cache + "/data";
      RemoveScratch();
    }
    std::filesystem::remove_all(staging, ec);  // lost the race, or failed
    if (data_ != cache + "/data" && UsableCache(cache, user)) {
      data_ = cache + "/data";
      RemoveScratch();
    }
    return ::testing::AssertionSuccess();
  }
  const std::string& data() const { return data_; }

 private:
  // A whole template (renamed into place only once complete) of the user's.
  static bool UsableCache(const std::string& cache, const RunUser& user) {
    struct stat st {};
    const std::string data = cache + "/data";
    return ::stat((data + "/PG_VERSION").c_str(), &st) == 0 && ::stat(data.c_str(), &st) == 0 &&
           st.st_uid == (user.drop ? user.uid : ::geteuid());
  }
  ::testing::AssertionResult InitDb(const RunUser& user) {
    const std::string initdb = BinDir() + "/initdb";
    auto made = MakeDir(user, "vigil-pg-template-", &scratch_);
    if (!made) return made;
    const std::string log = scratch_ + "/initdb.log";
    const int rc = Run(user,
                       {initdb, "-D", scratch_ + "/data", "-U", "vigil", "--auth=trust", "-E",
                        "UTF8", "--locale=C", "--no-sync", "--no-instructions"},
                       scratch_, log);
    if (rc != 0) {
      return ::testing::AssertionFailure() << "initdb failed (" << rc << "): " << ReadAll(log);
    }
    std::ofstream conf(scratch_ + "/data/postgresql.conf", std::ios::app);
    conf << kTestConf;
    if (!conf) return ::testing::AssertionFailure() << "writing postgresql.conf failed";
    return ::testing::AssertionSuccess();
  }
  void RemoveScratch() {
    if (scratch_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
    scratch_.clear();
  }
  std::string scratch_;
  std::string data_;
};

TemplateCluster& Template() {
  static TemplateCluster cluster;
  return cluster;
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

PostgresServer::~PostgresServer() { (void)Stop(); }

::testing::AssertionResult PostgresServer::PgCtl(const std::string& action,
                                                 const std::string& mode) {
  RunUser user;
  auto who = ServerUser(&user);
  if (!who) return who;
  std::vector<std::string> args = {BinDir() + "/pg_ctl", "-D", dir_ + "/data", "-w", "-t", "60"};
  if (action == "start") {
    args.insert(args.end(), {"-l", dir_ + "/server.log"});
  } else {
    args.insert(args.end(), {"-m", mode});
  }
  args.push_back(action);
  const std::string log = dir_ + "/pg_ctl.log";
  const int rc = Run(user, args, dir_, log);
  if (rc != 0) {
    return ::testing::AssertionFailure()
           << "pg_ctl " << action << " failed (" << rc << "): " << ReadAll(log) << "\nserver log:\n"
           << ReadAll(dir_ + "/server.log");
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PostgresServer::Start() {
  (void)Stop();
  const auto t0 = std::chrono::steady_clock::now();
  for (const char* program : {"initdb", "pg_ctl", "postgres"}) {
    const std::string path = BinDir() + "/" + program;
    if (::access(path.c_str(), X_OK) != 0) {
      return ::testing::AssertionFailure()
             << path
             << " not found: install postgresql-15 (scripts/deps); "
                "this test fails rather than skips without PostgreSQL";
    }
  }
  RunUser user;
  auto who = ServerUser(&user);
  if (!who) return who;
  auto ready = Template().Ensure(user);
  if (!ready) return ready;
  auto made = MakeDir(user, "vigil-pg-", &dir_);
  if (!made) return made;
  // cp -a keeps the owner (postgres) and the 0700 the server insists on.
  if (Run(RunUser{}, {"/bin/cp", "-a", Template().data(), dir_ + "/data"}, dir_,
          dir_ + "/cp.log") != 0) {
    return ::testing::AssertionFailure()
           << "copying the template cluster failed: " << ReadAll(dir_ + "/cp.log");
  }
  {
    std::ofstream conf(dir_ + "/data/postgresql.conf", std::ios::app);
    conf << "unix_socket_directories = '" << dir_ << "'\n";
    if (!conf) return ::testing::AssertionFailure() << "writing postgresql.conf failed";
  }
  auto started = PgCtl("start", "");
  if (!started) return started;
  running_ = true;
  start_seconds_ = Since(t0);
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PostgresServer::Restart() {
  auto stopped = PgCtl("stop", "fast");
  if (!stopped) return stopped;
  running_ = false;
  auto started = PgCtl("start", "");
  if (!started) return started;
  running_ = true;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PostgresServer::Crash() {
  auto stopped = PgCtl("stop", "immediate");
  if (!stopped) return stopped;
  running_ = false;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PostgresServer::Resume() {
  auto started = PgCtl("start", "");
  if (!started) return started;
  running_ = true;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PostgresServer::Stop() {
  if (dir_.empty()) return ::testing::AssertionSuccess();
  const auto t0 = std::chrono::steady_clock::now();
  ::testing::AssertionResult result = ::testing::AssertionSuccess();
  if (running_) {
    result = PgCtl("stop", "fast");
    running_ = false;
  }
  stop_seconds_ = Since(t0);
  std::error_code ec;
  if (result) std::filesystem::remove_all(dir_, ec);  // a failed stop keeps its logs
  dir_.clear();
  return result;
}

fleet::ConnectOptions PostgresServer::Options(const std::string& dbname) const {
  fleet::ConnectOptions o;
  o.host = dir_;
  o.port = 5432;
  o.dbname = dbname;
  o.user = "vigil";
  o.connect_timeout_seconds = 10;
  o.application_name = "vigil-test";
  return o;
}

void PostgresFixture::SetUp() { ASSERT_TRUE(server_.Start()); }

void PostgresFixture::TearDown() {
  EXPECT_TRUE(server_.Stop());
  std::fprintf(stderr, "[pg] server start %.3f s, stop %.3f s\n", server_.start_seconds(),
               server_.stop_seconds());
}

}  // namespace vigil::testing
