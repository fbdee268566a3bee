//! `grpc.health.v1.Health` at the gateway: the empty name is the gateway itself; a service's
//! name is answered by that service's backend.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::Health;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use crate::Routing;
use crate::proxy::PUBLIC_SERVICES;
use crate::replicas::Replicas;

pub struct HealthProxy {
    routing: Arc<Routing>,
    public: bool,
}

impl HealthProxy {
    pub fn new(routing: Arc<Routing>, public: bool) -> Self {
        Self { routing, public }
    }

    fn backend(&self, service: &str) -> Result<HealthClient<Replicas>, Status> {
        if self.public && !PUBLIC_SERVICES.contains(&service) {
            return Err(Status::not_found(format!("unknown service {service}")));
        }
        self.routing
            .backend(service, None)
            .map(|r| HealthClient::new(r.clone()))
            .ok_or_else(|| Status::not_found(format!("unknown service {service}")))
    }
}

fn serving(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse {
        status: status as i32,
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthProxy {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if service.is_empty() {
            return Ok(Response::new(serving(ServingStatus::Serving)));
        }
        let mut client = self.backend(&service)?;
        match client
            .check(HealthCheckRequest {
                service: service.clone(),
            })
            .await
        {
            Ok(answer) => Ok(Response::new(answer.into_inner())),
            Err(e) => {
                tracing::warn!(%service, error = %e, "backend health check failed");
                Ok(Response::new(serving(ServingStatus::NotServing)))
            }
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let service = request.into_inner().service;
        if service.is_empty() {
            let once = futures::stream::once(async { Ok(serving(ServingStatus::Serving)) });
            let stream: WatchStream =
                Box::pin(futures::StreamExt::chain(once, futures::stream::pending()));
            return Ok(Response::new(stream));
        }
        let mut client = self.backend(&service)?;
        let upstream = client
            .watch(HealthCheckRequest { service })
            .await?
            .into_inner();
        Ok(Response::new(Box::pin(upstream) as WatchStream))
    }
}
