//! Row-level security on PostgreSQL, the second line of tenant isolation, queried through a
//! tenant-scoped connection directly.

use creditmesh_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;
use creditmesh_tests::{Engine, TestMesh};
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_row_security_confines_a_prefecture_to_its_rows() {
    let Some(t) = TestMesh::start(Engine::Postgres).await else {
        return;
    };
    let mut public = ComplaintServiceClient::new(t.public().await);
    public
        .submit_complaint(super::complaints::complaint("rls-1", "650100"))
        .await
        .unwrap();
    public
        .submit_complaint(super::complaints::complaint("rls-2", "653100"))
        .await
        .unwrap();

    let mut conn = sqlx::PgConnection::connect(&t.db_url("complaints"))
        .await
        .unwrap();
    // A role like the one production services use: no superuser, so row security applies.
    let role = format!("cmtest_role_{}", uuid::Uuid::new_v4().simple());
    for sql in [
        format!("CREATE ROLE {role} NOLOGIN"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    let mut tx = scoped(&mut conn, &role, "650100").await;
    let tenants: Vec<String> = sqlx::query_scalar("SELECT tenant FROM complaints_complaint")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(tenants, ["650100"]);
    let updated =
        sqlx::query("UPDATE complaints_complaint SET subject = 'x' WHERE tenant = '653100'")
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
    assert_eq!(updated, 0, "another tenant's rows cannot be changed");
    let deleted = sqlx::query("DELETE FROM complaints_history WHERE tenant = '653100'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, 0, "another tenant's rows cannot be deleted");
    let insert = sqlx::query(
        "INSERT INTO complaints_history (tenant, tracking_number, seq, status, changed_at, principal, note) \
         VALUES ('653100', 'TSX', 1, 'received', 0, 'x', '')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    let code = insert
        .as_database_error()
        .and_then(|e| e.code())
        .unwrap_or_default();
    assert_eq!(
        code, "42501",
        "writing a row of another tenant violates the policy: {insert}"
    );
    tx.rollback().await.unwrap();

    let mut tx = scoped(&mut conn, &role, "650000").await;
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM complaints_complaint")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(all, 2, "the region sees every tenant");
    tx.rollback().await.unwrap();

    for sql in [format!("DROP OWNED BY {role}"), format!("DROP ROLE {role}")] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    t.stop().await;
}

/// A transaction under `role`, scoped to `tenant` as the services scope theirs.
async fn scoped<'c>(
    conn: &'c mut sqlx::PgConnection,
    role: &str,
    tenant: &str,
) -> sqlx::Transaction<'c, sqlx::Postgres> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE {role}")))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SELECT set_config('creditmesh.tenant', $1, true)")
        .bind(tenant.to_owned())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}
