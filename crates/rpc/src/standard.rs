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
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(creditmesh_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(creditmesh_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Ok(routes
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha))
}
