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

    let mut conn = sqlx::PgConnection::connect(&t.admin_db_url("complaints"))
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

/// The services' own role, scoped to a prefecture as a prefecture's call is: a forged query
/// cannot write another tenant's rows, nor the region's list, nor any region row (a forwarded
/// copy reaches the region as an event its review applies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefecture_session_cannot_write_another_tenants_rows() {
    let Some(t) = TestMesh::start(Engine::Postgres).await else {
        return;
    };
    let Some(t) = super::filing::mesh_with(t) else {
        return;
    };
    // An agency held by the region, so that review keeps a row of tenant 650000.
    let mut beijing = creditmesh_proto::filing::v1::filing_service_client::FilingServiceClient::new(
        t.node("agency-beijing").await,
    );
    let req =
        super::filing::application(&mut beijing, super::filing::BEIJING, "2020-05-01", "b").await;
    beijing.submit_filing(req).await.unwrap();
    let review = t.db_url("review");
    creditmesh_tests::eventually(
        "review knows the agency",
        std::time::Duration::from_secs(20),
        || {
            let url = review.clone();
            async move {
                (creditmesh_tests::scalar_i64(&url, "SELECT COUNT(*) FROM review_agency").await
                    == 1)
                    .then_some(())
            }
        },
    )
    .await;

    let mut conn = sqlx::PgConnection::connect(&review).await.unwrap();
    let privileged: bool = sqlx::query_scalar(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!privileged, "the services' role is bound by row security");

    let task = |tenant: &str, status: &str| {
        format!(
            "INSERT INTO review_task (tenant, task_id, kind, status, filing_id, subject_id, uscc, \
             agency_name, created_at, deadline_from, deadline_due, deadline_provisional, \
             calendar_version, checks, forwarded_from, principals) VALUES ('{tenant}', 'forged', \
             'filing', '{status}', 'f', 'f', 'u', '', 0, '', '', 0, '', '[]', '', '[]')"
        )
    };
    let mut denied = async |sql: String| {
        let mut tx = prefecture(&mut conn, "653100").await;
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut *tx)
            .await
            .unwrap_err();
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .unwrap_or_default();
        assert_eq!(code, "42501", "{sql}: {err}");
    };
    denied(task("650100", "open")).await;
    denied(task("650000", "open")).await;
    denied(task("650000", "forwarded")).await;
    denied(
        "INSERT INTO review_dishonesty (identifier, party, name, source, listed_on, updated_at) \
         VALUES ('X', 'person', 'x', 'forged', '2026-01-01', 0)"
            .into(),
    )
    .await;

    let mut tx = prefecture(&mut conn, "653100").await;
    let changed = sqlx::query("UPDATE review_agency SET status = 'revoked'")
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(
        changed, 0,
        "the region's agency is out of a prefecture's reach"
    );
    let listed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM review_dishonesty")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(listed, 0, "the list is readable");
    tx.rollback().await.unwrap();
    t.stop().await;
}

/// A transaction of the services' own role, scoped to `tenant`.
async fn prefecture<'c>(
    conn: &'c mut sqlx::PgConnection,
    tenant: &str,
) -> sqlx::Transaction<'c, sqlx::Postgres> {
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('creditmesh.tenant', $1, true)")
        .bind(tenant.to_owned())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

/// Row security follows the tenants' hierarchy (Art. 5): a prefecture's session sees its own
/// rows and its counties', a county's its own; a county writes only its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_row_security_nests_counties_in_their_prefecture() {
    let Some(t) = TestMesh::start(Engine::Postgres).await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&t.db_url("review"))
        .await
        .unwrap();
    let entry = |tenant: &str, id: &str| {
        format!(
            "INSERT INTO review_credit_file (tenant, entry_id, uscc, kind, recorded_at, principal, \
             summary, details) VALUES ('{tenant}', '{id}', 'u', 'interview', 0, 'p', 's', '')"
        )
    };
    for (tenant, id) in [
        ("650100", "a"),
        ("653100", "b"),
        ("653101", "c"),
        ("653121", "d"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(entry(tenant, id)))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let mut seen = async |scope: &str| -> Vec<String> {
        let mut tx = prefecture(&mut conn, scope).await;
        let tenants = sqlx::query_scalar("SELECT tenant FROM review_credit_file ORDER BY tenant")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        tenants
    };
    assert_eq!(seen("653100").await, ["653100", "653101", "653121"]);
    assert_eq!(seen("653101").await, ["653101"]);
    assert_eq!(seen("650100").await, ["650100"]);
    assert_eq!(seen("650000").await.len(), 4);

    let mut tx = prefecture(&mut conn, "653101").await;
    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(entry("653100", "e")))
        .execute(&mut *tx)
        .await
        .unwrap_err();
    let code = err
        .as_database_error()
        .and_then(|e| e.code())
        .unwrap_or_default();
    assert_eq!(
        code, "42501",
        "a county writes no row of its prefecture: {err}"
    );
    tx.rollback().await.unwrap();
    let mut tx = prefecture(&mut conn, "653101").await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(entry("653101", "f")))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    t.stop().await;
}
