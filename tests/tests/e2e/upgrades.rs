//! Upgrades as `docs/operations.md` describes them: a new build applies the migrations the
//! database lacks, and only those, keeping what the older build stored; an older build started
//! on a database a newer one migrated refuses it, naming the migration, and so does its
//! `creditmesh migrate`. PostgreSQL, as in production.

use creditmesh_storage::Db;
use creditmesh_storage::migrate;
use creditmesh_storage::sqlx::{self, AssertSqlSafe};
use creditmesh_tests::{Engine, fresh_database};

const BIN: &str = env!("CARGO_BIN_EXE_creditmesh-under-test");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_migrates_forward_and_an_older_build_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut cfg) = fresh_database(Engine::Postgres, dir.path()).await else {
        return;
    };
    cfg.url = cfg.url.replace("{service}", "review");
    let db = Db::connect(&cfg).await.unwrap();
    let defs = creditmesh::mesh::all_services(&Default::default());
    let review = defs.iter().find(|d| d.name == "review").unwrap();
    let mut all = review.all_migrations();
    all.sort_by_key(|m| m.version);
    let newest = all.last().unwrap().version;
    let older = &all[..all.len() - 1];

    // The release before this one, and an agency its review service knew.
    assert_eq!(
        migrate::run(&db, "review", older).await.unwrap(),
        older.len()
    );
    sqlx::query(
        "INSERT INTO review_agency (uscc, tenant, filing_id, status, principals) \
         VALUES ('91653100MA7XJ2001X', '653100', 'f-1', 'active', '[]')",
    )
    .execute(db.pool())
    .await
    .unwrap();

    // The upgrade applies the newest migration alone, once; the agency is still there.
    assert_eq!(migrate::run(&db, "review", &all).await.unwrap(), 1);
    assert_eq!(migrate::run(&db, "review", &all).await.unwrap(), 0);
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM review_agency")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(kept, 1);

    // The binary rolled back: the older build refuses the database, naming the migration.
    let err = migrate::run(&db, "review", older)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("migration {newest}")) && err.contains("newer build"),
        "{err}"
    );

    // So does this build's `creditmesh migrate` on a database a later build migrated.
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO review_schema_migrations (version, name, checksum, applied_at) \
         VALUES ({}, 'from a later release', '', 0)",
        newest + 1
    )))
    .execute(db.pool())
    .await
    .unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["migrate", "--services", "review"])
        .env_remove("CREDITMESH_CONFIG")
        .env("CREDITMESH_DATABASE__URL", &cfg.url)
        .env("CREDITMESH_DATA_DIR", dir.path())
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("migration {} (from a later release)", newest + 1)),
        "{said}"
    );
}
