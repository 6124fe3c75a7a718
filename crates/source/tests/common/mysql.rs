//! The MySQL test server (MariaDB, started by `tests/mysql/start.sh` from `bash
//! .ci/test`): where it is, an admin connection for setting up tables, and the source
//! under test.

use cdp_source::{MysqlOptions, MysqlSource};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

/// The test server's URL (without the password). The tests that need it fail (never
/// skip) without it.
pub fn mysql_url() -> String {
    std::env::var("CDP_TEST_MYSQL_URL").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_MYSQL_URL is not set: these tests need a real MySQL or MariaDB server; \
             run them with `bash .ci/test`, which starts one (crates/source/tests/mysql/start.sh) \
             and sets CDP_TEST_MYSQL_URL and CDP_TEST_MYSQL_PASSWORD"
        )
    })
}

/// The test user's password.
pub fn mysql_password() -> String {
    std::env::var("CDP_TEST_MYSQL_PASSWORD").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_MYSQL_PASSWORD is not set: run the tests with `bash .ci/test`, which starts \
             the MySQL test server and sets it"
        )
    })
}

/// A direct connection for setting up tables and changing server settings, outside
/// the source under test.
pub async fn admin() -> Conn {
    let opts = Opts::from_url(&mysql_url()).expect("a valid test URL");
    let opts = OptsBuilder::from_opts(opts).pass(Some(mysql_password())).prefer_socket(false);
    Conn::new(opts).await.expect("the MySQL test server accepts connections")
}

/// Runs `sql` (one or more statements) on a fresh admin connection.
pub async fn exec(sql: &str) {
    let mut conn = admin().await;
    conn.query_drop(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.disconnect().await.unwrap();
}

/// The source under test, on the test server, with the test user's password.
pub fn mysql_source(options: MysqlOptions) -> MysqlSource {
    MysqlSource::new("test-mysql", &mysql_url(), options.password(mysql_password()))
        .expect("a valid test URL")
}
