//! Query plans on PostgreSQL at production size: with 100,000 tasks and filings, the lookups by
//! id and the pages of the list and overdue views read an index, never the whole table.

use creditmesh_tests::{Engine, TestMesh};
use sqlx::Connection;

const ROWS: i64 = 100_000;

async fn plan(conn: &mut sqlx::PgConnection, sql: &str) -> String {
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_lookups_read_an_index_at_a_hundred_thousand_rows() {
    let Some(t) = TestMesh::start(Engine::Postgres).await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&t.db_url("review"))
        .await
        .unwrap();
    let tenants = "(ARRAY['650100','650200','650400','650500','652200','652300','652700',\
                   '652800','652900','653000','653100','653200','654000','654200','654300'])";
    for sql in [
        format!(
            "INSERT INTO review_task (tenant, task_id, kind, status, filing_id, subject_id, uscc, \
             agency_name, created_at, deadline_from, deadline_due, deadline_provisional, \
             calendar_version, checks, forwarded_from, principals) \
             SELECT {tenants}[1 + i % 15], lpad(i::text, 12, '0'), 'filing', \
             CASE WHEN i % 10 = 0 THEN 'open' ELSE 'approved' END, 'f' || i, 'f' || i, 'u' || i, '', \
             0, '2026-01-01', '2026-01-15', 0, 'v', '[]', '', '[]' FROM generate_series(1, {ROWS}) i"
        ),
        format!(
            "INSERT INTO filing_filing (tenant, filing_id, uscc, agency_name, status, \
             reviewing_tenant, submitted_at, review_from, review_due, review_provisional, \
             calendar_version, facts, documents) \
             SELECT {tenants}[1 + i % 15], lpad(i::text, 12, '0'), 'u' || i, '', 'refused', \
             {tenants}[1 + i % 15], 0, '', '', 0, '', '{{}}', '{{}}' FROM generate_series(1, {ROWS}) i"
        ),
        "ANALYZE review_task".into(),
        "ANALYZE filing_filing".into(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let queries = [
        "SELECT * FROM review_task WHERE task_id = '000000054321'",
        "SELECT * FROM review_task WHERE tenant = '653100' AND task_id > '000000050000' \
         ORDER BY task_id LIMIT 51",
        "SELECT * FROM review_task WHERE tenant = '653100' AND status = 'open' \
         AND deadline_provisional = 0 AND deadline_due <> '' AND deadline_due < '2026-11-27' \
         AND task_id > '' ORDER BY task_id LIMIT 51",
        "SELECT * FROM filing_filing WHERE filing_id = '000000054321'",
        "SELECT * FROM filing_filing WHERE tenant = '653100' AND filing_id > '000000050000' \
         ORDER BY filing_id LIMIT 51",
    ];
    for q in queries {
        let p = plan(&mut conn, q).await;
        println!("{q}\n{p}\n");
        assert!(!p.contains("Seq Scan"), "{q}\n{p}");
    }
    t.stop().await;
}
