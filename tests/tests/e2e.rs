//! End-to-end suite: the mesh on port 0, real TLS, real gRPC clients, SQLite always and
//! PostgreSQL when `CREDITMESH_TEST_DATABASE_URL` is set.

mod e2e {
    pub mod balancing;
    pub mod browser;
    pub mod certs;
    pub mod complaints;
    pub mod console;
    pub mod counties;
    pub mod database_tls;
    pub mod datapush;
    pub mod durability;
    pub mod edge;
    pub mod filing;
    pub mod fuzz;
    pub mod index_keys;
    pub mod lifecycle;
    pub mod mesh;
    pub mod objections;
    pub mod ops;
    pub mod parties;
    pub mod plans;
    pub mod process;
    pub mod races;
    pub mod referrals;
    pub mod register;
    pub mod replicas;
    pub mod review;
    pub mod routing;
    pub mod tenancy;
    pub mod topology;
    pub mod tracing;
    pub mod upgrades;
    pub mod web;
    pub mod workloads;
}

/// Declares `NAME` once per engine: `sqlite::NAME` and `postgres::NAME`, each calling
/// `super::NAME(engine)`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(creditmesh_tests::Engine::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(creditmesh_tests::Engine::Postgres).await;
                }
            )*
        }
    };
}
