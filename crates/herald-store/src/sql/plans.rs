//! PostgreSQL's plans of the statements whose speed depends on the index they read through:
//! a statement that can no longer use its index still returns the right rows, slowly, and
//! only at a size no other test reaches.

use crate::postgres::PostgresStore;

/// A PostgreSQL store in a schema of its own on the test server (`HERALD_TEST_DATABASE_URL`),
/// with its name; `None` (the test is skipped) where the server is unreachable outside CI.
/// [`drop_schema`] removes it.
pub(crate) async fn store_in_new_schema() -> Option<(PostgresStore, String)> {
    let url = url();
    let schema = format!(
        "herald_test_{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    match PostgresStore::open_in_schema(&url, &schema).await {
        Ok(store) => Some((store, schema)),
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: PostgreSQL at {url} is unreachable: {error}");
            None
        }
        Err(error) => panic!("PostgreSQL at {url} is unreachable under CI: {error}"),
    }
}

fn url() -> String {
    std::env::var("HERALD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Closes `store` and drops its schema.
pub(crate) async fn drop_schema(store: PostgresStore, schema: &str) {
    store.writer.close().await;
    let admin = sqlx::PgPool::connect(&url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}

/// PostgreSQL's generic plan of `sql` (the one made once for any values, which claims always
/// use and other statements use once it looks no worse), line by line, run with `args` (SQL
/// literals, so each takes the type its placeholder has in the statement, or the one in
/// `types` where the text leaves it open, as in `$2 IS NULL OR …`; `NULL` for none),
/// after the statements `before` in the same transaction (which may ask for the plan made for
/// the values given instead: `SET LOCAL plan_cache_mode = force_custom_plan`).
pub(crate) async fn plan(
    store: &PostgresStore,
    before: &[&str],
    sql: &str,
    types: &[&str],
    args: &[&str],
) -> Vec<String> {
    let mut conn = store.writer.acquire().await.unwrap();
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("SET LOCAL plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await
        .unwrap();
    for statement in before {
        sqlx::query(sqlx::AssertSqlSafe(*statement))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let types = if types.is_empty() {
        String::new()
    } else {
        format!(" ({})", types.join(", "))
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "PREPARE herald_plan{types} AS {sql}"
    )))
    .execute(&mut *conn)
    .await
    .unwrap();
    let literals: Vec<String> = args
        .iter()
        .map(|a| match *a {
            "NULL" => "NULL".to_owned(),
            a => format!("'{}'", a.replace('\'', "''")),
        })
        .collect();
    let explain = format!(
        "EXPLAIN (COSTS OFF) EXECUTE herald_plan({})",
        literals.join(", ")
    );
    let lines: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(explain))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    for reset in ["DEALLOCATE herald_plan", "ROLLBACK"] {
        sqlx::query(reset).execute(&mut *conn).await.unwrap();
    }
    lines.into_iter().map(|(line,)| line).collect()
}

/// Every statement that reads events by id names their tenant too, and reads them through the
/// key (tenant, id) (migration 26) with both, in a day's partition too young to have
/// statistics: the key on the id alone is gone, so a statement without the tenant reads every
/// event, and one whose tenant and id come from two tables joined before may be planned to
/// read every event of the tenant for each row (`[event_of]` in `sql/mod.rs`; with the join
/// written plainly, the benchmark's drain sent 10,847 deliveries of 20,000 in 120 s).
#[tokio::test]
async fn postgres_reads_events_through_their_tenant_and_id() {
    let Some((store, schema, young)) = young_day().await else {
        return;
    };
    let Young {
        endpoint,
        ids,
        events_day,
        deliveries_day,
    } = young;
    let (event, delivery) = (ids[7].0.as_str(), ids[7].1.as_str());
    let key = serde_json::json!([[&endpoint, delivery]]).to_string();
    let purged = serde_json::json!([["acme", event]]).to_string();
    // Every event is older than that: accepted at 1, its id made before 2096.
    let floor = crate::id_floor("evt", 4_000_000_000_000);
    let in_key_order = [super::upkeep::PURGE_IN_KEY_ORDER.postgres];
    for (name, by_delivery, before, sql, args) in [
        (
            "a delivery by id",
            true,
            &[][..],
            super::log::DELIVERY.postgres,
            vec![delivery, "acme"],
        ),
        (
            "a retry",
            true,
            &[][..],
            super::log::RETRY_FIND.postgres,
            vec![delivery, "acme"],
        ),
        (
            "a claim's read",
            true,
            &[][..],
            super::claim::READ_CLAIMED.postgres,
            vec![key.as_str()],
        ),
        (
            "an attempt's causes",
            true,
            &[][..],
            super::notify::CAUSES.postgres,
            vec![key.as_str()],
        ),
        (
            "a repeated key",
            false,
            &[][..],
            super::accept::EARLIER,
            vec!["acme", event],
        ),
        (
            "retention's candidates",
            false,
            &in_key_order[..],
            super::upkeep::PURGE_CANDIDATES.postgres,
            vec!["2", "500", floor.as_str()],
        ),
        (
            "retention's delete",
            false,
            &[][..],
            super::upkeep::PURGE.postgres,
            vec![purged.as_str()],
        ),
    ] {
        // The plan made for any values, and the one made for the values given.
        let custom = [
            before,
            &["SET LOCAL plan_cache_mode = force_custom_plan"][..],
        ]
        .concat();
        for before in [before, &custom[..]] {
            let plan = plan(&store, before, sql, &[], &args).await;
            assert_reads_by_key(&plan, &events_day, "tenant_id", name);
            // Retention walks the key in its order, never reading every old event to sort them.
            let sorts = |l: &String| l.contains("->  Sort") || l.contains("Bitmap");
            let walk = sql == super::upkeep::PURGE_CANDIDATES.postgres;
            assert!(!walk || !plan.iter().any(sorts), "{name}: {plan:#?}");
            if by_delivery {
                assert_reads_by_key(&plan, &deliveries_day, "endpoint_id", name);
            }
        }
    }
    drop_schema(store, &schema).await;
}

/// A page of an endpoint's log reads its deliveries through their index, newest first, and
/// each one's event through the events' key with both columns, whether PostgreSQL plans it
/// for the values given or for any: joined plainly, with today's partitions too young to
/// have statistics, it read every event of the tenant for the first page
/// (`scripts/large-tenant.sh`: 0.5-0.8 s for 300,000). The pending page reads the pending
/// ones' index: walking the endpoint's history newest first for them looked cheaper to it.
#[tokio::test]
async fn postgres_reads_a_page_of_the_log_through_the_endpoint_and_each_event_by_key() {
    let Some((store, schema, young)) = young_day().await else {
        return;
    };
    let Young {
        endpoint,
        ids,
        events_day,
        deliveries_day,
    } = young;
    // The tenant, below every id, the endpoint, no event, type, state or times, 21 rows, from
    // the first id; a page of the tenant's endpoints names none, an event's page the event.
    let args = [
        "acme", "dlv_~", &endpoint, "NULL", "NULL", "NULL", "NULL", "NULL", "21", "dlv_",
    ];
    let of_tenant = [
        "acme", "dlv_~", "NULL", "NULL", "NULL", "NULL", "NULL", "NULL", "21", "dlv_",
    ];
    let event = ids[7].0.as_str();
    let of_event = [
        "acme", "dlv_~", "NULL", event, "NULL", "NULL", "NULL", "NULL", "21", "dlv_",
    ];
    // The types sqlx binds, which the text leaves open (`$4 IS NULL OR …`).
    let types = [
        "text", "text", "text", "text", "text", "text", "bigint", "bigint", "bigint", "text",
    ];
    let custom = ["SET LOCAL plan_cache_mode = force_custom_plan"];
    let day = deliveries_day.as_str();
    for (name, sql, index, args) in [
        (
            "a page",
            super::log::ENDPOINT_PAGE,
            format!("{day}_pkey"),
            args,
        ),
        (
            "a pending page",
            super::log::PENDING_PAGE,
            format!("{day}_endpoint_id_next_attempt_at_idx"),
            args,
        ),
        (
            "a dead page",
            super::log::DEAD_PAGE,
            format!("{day}_endpoint_id_id_idx"),
            args,
        ),
        (
            "a page of the tenant's endpoints",
            super::Sql::from(super::log::MERGED_PAGE),
            format!("{day}_pkey"),
            of_tenant,
        ),
        (
            "a pending page of the tenant's endpoints",
            super::Sql::from(super::log::MERGED_PENDING_PAGE),
            format!("{day}_endpoint_id_next_attempt_at_idx"),
            of_tenant,
        ),
        (
            "a dead page of the tenant's endpoints",
            super::Sql::from(super::log::MERGED_DEAD_PAGE),
            format!("{day}_endpoint_id_id_idx"),
            of_tenant,
        ),
        (
            "an event's page",
            super::Sql::from(super::log::EVENT_PAGE),
            format!("{day}_event_id_idx"),
            of_event,
        ),
    ] {
        for before in [&[][..], &custom[..]] {
            let plan = plan(&store, before, sql.postgres, &types, &args).await;
            assert_reads_by_key(&plan, &events_day, "tenant_id", name);
            assert!(
                plan.iter()
                    .any(|l| l.contains(&format!(" using {index} on {day} "))
                        || l.contains(&format!("Bitmap Index Scan on {index}"))),
                "{name} does not read {day} through {index}: {plan:#?}"
            );
        }
    }
    drop_schema(store, &schema).await;
}

/// What [`young_day`] wrote.
struct Young {
    endpoint: String,
    /// Each event's id and its delivery's.
    ids: Vec<(String, String)>,
    /// The day's partitions, which hold the rows.
    events_day: String,
    deliveries_day: String,
}

/// A store in a schema of its own ([`store_in_new_schema`]) with tenant `acme`, 64 endpoints,
/// and 2,000 events each with a delivery that succeeded to the first, in today's partitions,
/// which have no statistics yet.
async fn young_day() -> Option<(PostgresStore, String, Young)> {
    use crate::{NewEndpoint, Registry};
    let (store, schema) = store_in_new_schema().await?;
    store.create_tenant("acme").await.unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let endpoint = NewEndpoint::new("acme", "https://example.com", secret);
    let endpoint = store.create_endpoint(endpoint).await.unwrap().id;
    // Endpoints of the tenant's with nothing yet: looking under each for a delivery looks
    // dearer to the planner than reading the day, which grows without bound.
    for i in 1..64 {
        let other = NewEndpoint::new("acme", &format!("https://example.com/{i}"), secret);
        store.create_endpoint(other).await.unwrap();
    }
    let ids: Vec<(String, String)> = (0..2_000)
        .map(|_| (crate::new_id("evt"), crate::new_id("dlv")))
        .collect();
    for insert in [
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
         SELECT t.value->>0, 'acme', 't', '{}', t.value->>0, 1 \
         FROM jsonb_array_elements(CAST($1 AS jsonb)) AS t",
        "INSERT INTO idempotency_keys (tenant_id, key, event_id) \
         SELECT 'acme', t.value->>0, t.value->>0 FROM jsonb_array_elements(CAST($1 AS jsonb)) AS t",
        "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, \
           created_at, updated_at) \
         SELECT t.value->>1, t.value->>0, $2, 'succeeded', 1, NULL, 1, 1 \
         FROM jsonb_array_elements(CAST($1 AS jsonb)) AS t",
    ] {
        sqlx::query(insert)
            .bind(super::json_rows(&ids))
            .bind(&endpoint)
            .execute(&store.writer)
            .await
            .unwrap();
    }

    let (events_day, deliveries_day): (String, String) = sqlx::query_as(
        "SELECT (SELECT CAST(tableoid::regclass AS TEXT) FROM events LIMIT 1), \
           (SELECT CAST(tableoid::regclass AS TEXT) FROM deliveries LIMIT 1)",
    )
    .fetch_one(&store.writer)
    .await
    .unwrap();
    let young = Young {
        endpoint,
        ids,
        events_day,
        deliveries_day,
    };
    Some((store, schema, young))
}

/// Asserts that `plan` reads `table` (a day's partition, which holds the rows) through its
/// key with both columns (`first`, then `id`), and every other day through its key too.
fn assert_reads_by_key(plan: &[String], table: &str, first: &str, name: &str) {
    let prefix = table.split_once("_p").map_or(table, |(prefix, _)| prefix);
    let reads: Vec<usize> = (0..plan.len())
        .filter(|&i| plan[i].contains("Scan") && plan[i].contains(&format!(" on {prefix}_")))
        .collect();
    for &i in &reads {
        assert!(
            plan[i].contains("Index") && plan[i].contains("_pkey"),
            "{name}: {plan:#?}"
        );
    }
    let read = reads
        .iter()
        .find(|&&i| plan[i].contains(&format!(" on {table} ")))
        .unwrap_or_else(|| panic!("{name} does not read {table}: {plan:#?}"));
    let condition = plan[read + 1..]
        .iter()
        .find(|line| line.contains("Index Cond"))
        .unwrap_or_else(|| panic!("{name}: {plan:#?}"));
    assert!(
        condition.contains(&format!("({first} = ")) && condition.contains("AND (id "),
        "{name} reads {table} with part of its key: {plan:#?}"
    );
}

/// The functions that read a batch's rows and a list's texts are taken for one row by the
/// planner, whatever the list (which no plan sees), are not inlined into the statements that
/// call them, give what `jsonb_array_elements` and `json_array_elements_text` give, and
/// nothing for NULL; and they are PL/pgSQL, which plans its query once per connection, where
/// a SQL function not inlined planned its body on every call (migration 29).
#[tokio::test]
async fn postgres_batch_rows_are_estimated_one_and_planned_once() {
    let Some((store, schema)) = store_in_new_schema().await else {
        return;
    };
    let mut conn = store.writer.acquire().await.unwrap();
    for (function, list) in [
        (
            "herald_rows_jsonb",
            "CAST('[[\"a\",1],[\"b\",2],[\"c\",3]]' AS jsonb)",
        ),
        ("herald_texts", "CAST('[\"a\",\"b\",\"c\"]' AS json)"),
    ] {
        let (language, strict, rows): (String, bool, f32) = sqlx::query_as(
            "SELECT l.lanname::text, p.proisstrict, p.prorows FROM pg_proc p \
             JOIN pg_language l ON l.oid = p.prolang \
             WHERE p.proname = $1 AND p.pronamespace = CAST(current_schema() AS regnamespace)",
        )
        .bind(function)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!((language.as_str(), strict, rows), ("plpgsql", true, 1.0));
        let (estimate,): (serde_json::Value,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (FORMAT JSON) SELECT * FROM {function}({list}) AS v"
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        let plan = &estimate[0]["Plan"];
        assert_eq!(plan["Node Type"], "Function Scan", "{function}: {plan}");
        assert_eq!(plan["Plan Rows"], 1, "{function}: {plan}");
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {function}({list}) AS v"
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(count, 3, "{function}");
        let (none,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {function}(NULL) AS v"
        )))
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(none, 0, "{function}");
    }
    let (same,): (bool,) = sqlx::query_as(
        "SELECT array_agg(v.value ORDER BY v.value) = \
           (SELECT array_agg(w.value ORDER BY w.value) \
            FROM jsonb_array_elements(CAST('[[\"a\",1],{\"b\":2}]' AS jsonb)) AS w) \
         FROM herald_rows_jsonb(CAST('[[\"a\",1],{\"b\":2}]' AS jsonb)) AS v",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert!(same);
    drop(conn);
    drop_schema(store, &schema).await;
}
