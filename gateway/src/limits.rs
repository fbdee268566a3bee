//! Protection of the gateway: a global cap on calls in flight that sheds the excess at once,
//! and per-principal call rates.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::policy::Role;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Calls in flight through the gateway at once; more are refused with
    /// `RESOURCE_EXHAUSTED` instead of queueing.
    pub max_concurrent_calls: u32,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Largest HTTP/2 header list a caller may send.
    pub max_header_list_bytes: u32,
    /// Connections the gateway keeps to each backend, used in turn.
    pub backend_connections: u32,
    /// Calls per second for each principal of a role (the public: per client address);
    /// 0 is unlimited. Bursts of up to one second's worth are allowed.
    pub rate_per_second: RateLimits,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub agency: u32,
    pub prefecture_regulator: u32,
    pub regional_regulator: u32,
    pub department: u32,
    pub public: u32,
    pub service: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 2048,
            max_concurrent_streams: 256,
            max_header_list_bytes: 16 * 1024,
            backend_connections: 4,
            rate_per_second: RateLimits::default(),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            agency: 200,
            prefecture_regulator: 500,
            regional_regulator: 1000,
            department: 100,
            public: 20,
            service: 0,
        }
    }
}

impl RateLimits {
    /// No rate limits at all (benchmarks, tests).
    pub fn off() -> Self {
        Self {
            agency: 0,
            prefecture_regulator: 0,
            regional_regulator: 0,
            department: 0,
            public: 0,
            service: 0,
        }
    }

    fn for_role(&self, role: Role) -> u32 {
        match role {
            Role::Agency => self.agency,
            Role::PrefectureRegulator => self.prefecture_regulator,
            Role::RegionalRegulator => self.regional_regulator,
            Role::Department => self.department,
            Role::Public => self.public,
            Role::Service => self.service,
        }
    }
}

pub struct Limits {
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
    rates: HashMap<&'static str, DefaultKeyedRateLimiter<String>>,
    config: RateLimits,
}

const ROLES: [Role; 6] = [
    Role::Agency,
    Role::PrefectureRegulator,
    Role::RegionalRegulator,
    Role::Department,
    Role::Public,
    Role::Service,
];

fn role_key(role: Role) -> &'static str {
    match role {
        Role::Agency => "agency",
        Role::PrefectureRegulator => "prefecture_regulator",
        Role::RegionalRegulator => "regional_regulator",
        Role::Department => "department",
        Role::Public => "public",
        Role::Service => "service",
    }
}

impl Limits {
    pub fn new(cfg: &LimitsConfig) -> Self {
        let mut rates = HashMap::new();
        for role in ROLES {
            if let Some(n) = NonZeroU32::new(cfg.rate_per_second.for_role(role)) {
                rates.insert(role_key(role), RateLimiter::keyed(Quota::per_second(n)));
            }
        }
        Self {
            in_flight: Arc::new(Semaphore::new(cfg.max_concurrent_calls as usize)),
            max_in_flight: cfg.max_concurrent_calls,
            rates,
            config: cfg.rate_per_second.clone(),
        }
    }

    /// A place among the calls in flight, or `RESOURCE_EXHAUSTED` at once.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.in_flight.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "the gateway is at its limit of {} calls in flight; retry with backoff",
                self.max_in_flight
            ))
        })
    }

    /// Charges one call to `key` (a principal, or a client address for the public).
    pub fn charge(&self, role: Role, key: &str) -> Result<(), Status> {
        let Some(limiter) = self.rates.get(role_key(role)) else {
            return Ok(());
        };
        limiter.check_key(&key.to_owned()).map_err(|_| {
            Status::resource_exhausted(format!(
                "rate limit of {} calls per second for {} callers exceeded",
                self.config.for_role(role),
                role_key(role)
            ))
        })
    }

    /// Forgets callers that have not called for a while.
    pub fn forget_idle(&self) {
        for limiter in self.rates.values() {
            limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheds_beyond_the_concurrency_cap() {
        let limits = Limits::new(&LimitsConfig {
            max_concurrent_calls: 2,
            ..LimitsConfig::default()
        });
        let a = limits.admit().unwrap();
        let _b = limits.admit().unwrap();
        assert_eq!(
            limits.admit().unwrap_err().code(),
            tonic::Code::ResourceExhausted
        );
        drop(a);
        assert!(limits.admit().is_ok());
    }

    #[test]
    fn rate_limits_each_principal_on_its_own() {
        let mut cfg = LimitsConfig::default();
        cfg.rate_per_second.agency = 3;
        cfg.rate_per_second.department = 0;
        let limits = Limits::new(&cfg);
        for _ in 0..3 {
            limits.charge(Role::Agency, "a").unwrap();
        }
        let err = limits.charge(Role::Agency, "a").unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        limits.charge(Role::Agency, "b").unwrap();
        for _ in 0..100 {
            limits.charge(Role::Department, "d").unwrap();
        }
    }
}
