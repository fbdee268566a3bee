//! The services every node answers besides its own: health and reflection.

use tonic::service::Routes;
use tonic_health::server::HealthReporter;

/// Adds `grpc.health.v1.Health` (reporting each of `serving` as SERVING) and server reflection
/// (v1 and v1alpha) over every creditmesh contract.
pub async fn add_health_and_reflection(
    routes: Routes,
    serving: &[&str],
) -> anyhow::Result<(Routes, HealthReporter)> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in serving {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    Ok((add_reflection(routes.add_service(health))?, reporter))
}

/// Adds server reflection (v1 and v1alpha) over every creditmesh contract and health.
pub fn add_reflection(routes: Routes) -> anyhow::Result<Routes> {
    add_reflection_listing(routes, None)
}

/// Adds server reflection (v1 and v1alpha) whose service list names only `listed` (with health
/// and reflection), or every service when `None`; any contract's symbols still resolve.
pub fn add_reflection_listing(routes: Routes, listed: Option<&[&str]>) -> anyhow::Result<Routes> {
    let builder = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(creditmesh_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        if let Some(names) = listed {
            let standard = [
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ];
            for name in names.iter().chain(&standard) {
                b = b.with_service_name(*name);
            }
        }
        b
    };
    Ok(routes
        .add_service(builder().build_v1()?)
        .add_service(builder().build_v1alpha()?))
}
