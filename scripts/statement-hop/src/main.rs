//! One look-up by key, 20,000 times, three rounds: through sqlx, then on this thread through the
//! raw handle sqlx lends. Runs on a current-thread runtime, as herald's committing task does.

use std::time::Instant;

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

const N: i64 = 20_000;

fn main() {
    let dir = std::env::temp_dir().join(format!("statement-hop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}/hop.db?mode=rwc", dir.display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut conn = SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            .execute(&mut conn)
            .await
            .unwrap();
        for round in 1..=3 {
            let started = Instant::now();
            for i in 0..N {
                sqlx::query("SELECT v FROM t WHERE id = $1")
                    .bind(i)
                    .fetch_optional(&mut conn)
                    .await
                    .unwrap();
            }
            let through_sqlx = started.elapsed().as_secs_f64() / N as f64 * 1e6;

            let started = Instant::now();
            {
                let mut handle = conn.lock_handle().await.unwrap();
                let db = handle.as_raw_handle().as_ptr();
                // SAFETY: while `handle` lives, sqlx's thread makes no call on this connection.
                unsafe {
                    use libsqlite3_sys as ffi;
                    let mut statement = std::ptr::null_mut();
                    let sql = c"SELECT v FROM t WHERE id = ?1";
                    let prepared = ffi::sqlite3_prepare_v2(
                        db,
                        sql.as_ptr(),
                        -1,
                        &mut statement,
                        std::ptr::null_mut(),
                    );
                    assert_eq!(prepared, ffi::SQLITE_OK);
                    for i in 0..N {
                        ffi::sqlite3_bind_int64(statement, 1, i);
                        while ffi::sqlite3_step(statement) == ffi::SQLITE_ROW {}
                        ffi::sqlite3_reset(statement);
                    }
                    ffi::sqlite3_finalize(statement);
                }
            }
            let on_this_thread = started.elapsed().as_secs_f64() / N as f64 * 1e6;
            println!(
                "round {round}: {through_sqlx:.1} µs a statement through sqlx, \
                 {on_this_thread:.2} µs on this thread"
            );
        }
        conn.close().await.unwrap();
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
