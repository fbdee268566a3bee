//! Protection of the gateway: caps on calls in flight — in total, per tenant and per caller —
//! that shed the excess at once, and per-principal call rates. A call holds its places until
//! its response ends, so a long stream (a health watch) counts for as long as it is open.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use creditmesh_transport::connections::ConnectionLimits;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::caller::Caller;
use crate::policy::Role;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Calls in flight through the gateway at once; more are refused with
    /// `RESOURCE_EXHAUSTED` instead of queueing.
    pub max_concurrent_calls: u32,
    /// Calls in flight of one tenant's principals (the public counts as one tenant), so that
    /// a tenant sending more than its share cannot take the others' places.
    pub max_calls_per_tenant: u32,
    /// Calls in flight of one principal (the public: of one client address), streams included.
    pub max_calls_per_caller: u32,
    /// Concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Largest header list a call may carry (names, values and 32 bytes each, as HTTP/2
    /// counts them); beyond it the call is refused with `RESOURCE_EXHAUSTED`. HTTP/2 itself
    /// refuses lists above 16 times this with a bare 431.
    pub max_header_list_bytes: u32,
    /// Connections the gateway opens at most to each replica of a backend.
    pub backend_connections: u32,
    /// Calls in flight on one backend connection before the next connection takes new calls
    /// (calls sharing a connection share its writes; more connections spread the framing
    /// over more cores).
    pub backend_calls_per_connection: u32,
    /// Calls per second for each principal of a role (the public: per client address);
    /// 0 is unlimited. Bursts of up to one second's worth are allowed.
    pub rate_per_second: RateLimits,
    /// Connections of both listeners.
    pub connections: ConnectionLimits,
    /// Share of the connection places, in percent, that the public listener never takes, so
    /// that agencies, regulators and departments always find room on the node listener.
    pub node_reserved_percent: u32,
    /// Origins (`https://host[:port]`) whose pages may call the public listener with
    /// gRPC-Web from a browser: their CORS preflights are answered with leave to send the
    /// gRPC-Web headers, and answers expose the gRPC status. None by default: a browser
    /// refuses a cross-origin call.
    pub grpc_web_origins: Vec<String>,
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
            max_calls_per_tenant: 512,
            max_calls_per_caller: 64,
            max_concurrent_streams: 256,
            max_header_list_bytes: 16 * 1024,
            backend_connections: 4,
            backend_calls_per_connection: 128,
            rate_per_second: RateLimits::default(),
            connections: ConnectionLimits::default(),
            node_reserved_percent: 25,
            grpc_web_origins: Vec::new(),
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
    max_header_list_bytes: usize,
    in_flight: Arc<Semaphore>,
    max_in_flight: u32,
    per_tenant: Arc<Counts>,
    per_caller: Arc<Counts>,
    rates: HashMap<&'static str, DefaultKeyedRateLimiter<Arc<str>>>,
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
            max_header_list_bytes: cfg.max_header_list_bytes as usize,
            in_flight: Arc::new(Semaphore::new(cfg.max_concurrent_calls as usize)),
            max_in_flight: cfg.max_concurrent_calls,
            per_tenant: Counts::new(cfg.max_calls_per_tenant, "tenant"),
            per_caller: Counts::new(cfg.max_calls_per_caller, "caller"),
            rates,
            config: cfg.rate_per_second.clone(),
        }
    }

    /// Refuses a header list above the limit with a status the caller's gRPC stack can read.
    pub fn check_headers(&self, headers: &http::HeaderMap) -> Result<(), Status> {
        let size: usize = headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        if size > self.max_header_list_bytes {
            return Err(Status::resource_exhausted(format!(
                "request headers of {size} bytes exceed the limit of {} bytes",
                self.max_header_list_bytes
            )));
        }
        Ok(())
    }

    /// Charges the caller's rate and gives its call places among the calls in flight (its
    /// own, its tenant's and the gateway's), or `RESOURCE_EXHAUSTED` at once.
    pub fn admit(&self, caller: &Caller) -> Result<Permits, Status> {
        self.charge(caller.role, &caller.key)?;
        let caller_place = self.per_caller.take(&caller.key)?;
        let tenant_place = self.per_tenant.take(&caller.tenant)?;
        let global = self.in_flight.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "the gateway is at its limit of {} calls in flight; retry with backoff",
                self.max_in_flight
            ))
        })?;
        Ok(Permits {
            _global: global,
            _tenant: tenant_place,
            _caller: caller_place,
        })
    }

    /// Charges one call to `key` (a principal, or a client address for the public).
    pub fn charge(&self, role: Role, key: &Arc<str>) -> Result<(), Status> {
        let Some(limiter) = self.rates.get(role_key(role)) else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            use governor::clock::Clock;
            // When the next call would be allowed, for clients that pace themselves.
            let wait = not_until.wait_time_from(limiter.clock().now());
            <Status as tonic_types::StatusExt>::with_error_details(
                tonic::Code::ResourceExhausted,
                format!(
                    "rate limit of {} calls per second for {} callers exceeded",
                    self.config.for_role(role),
                    role_key(role)
                ),
                tonic_types::ErrorDetails::with_retry_info(Some(wait)),
            )
        })
    }

    /// Forgets callers that have not called for a while.
    pub fn forget_idle(&self) {
        for limiter in self.rates.values() {
            limiter.retain_recent();
        }
    }
}

/// A call's places, given back when dropped.
pub struct Permits {
    _global: OwnedSemaphorePermit,
    _tenant: Place,
    _caller: Place,
}

/// Calls in flight per key, each key capped.
struct Counts {
    by_key: Mutex<HashMap<Arc<str>, u32>>,
    max: u32,
    what: &'static str,
}

impl Counts {
    fn new(max: u32, what: &'static str) -> Arc<Self> {
        Arc::new(Self {
            by_key: Mutex::default(),
            max: max.max(1),
            what,
        })
    }

    fn take(self: &Arc<Self>, key: &Arc<str>) -> Result<Place, Status> {
        let mut by_key = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        let n = by_key.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return Err(Status::resource_exhausted(format!(
                "limit of {} calls in flight per {} reached; retry with backoff",
                self.max, self.what
            )));
        }
        *n += 1;
        Ok(Place {
            counts: self.clone(),
            key: key.clone(),
        })
    }
}

struct Place {
    counts: Arc<Counts>,
    key: Arc<str>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut by_key = self.counts.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = by_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                by_key.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agency(tenant: &str, subject: &str) -> Caller {
        let principal = creditmesh_domain::Principal::new(
            creditmesh_domain::PrincipalKind::Agency,
            creditmesh_domain::Tenant::parse(tenant).unwrap(),
            subject,
        );
        Caller {
            role: Role::Agency,
            id: subject.into(),
            key: subject.into(),
            tenant: tenant.into(),
            serial: None,
            principal,
        }
    }

    #[test]
    fn sheds_beyond_the_caps_in_total_per_tenant_and_per_caller() {
        let limits = Limits::new(&LimitsConfig {
            max_concurrent_calls: 4,
            max_calls_per_tenant: 3,
            max_calls_per_caller: 2,
            rate_per_second: RateLimits::off(),
            ..LimitsConfig::default()
        });
        let a1 = agency("650100", "a");
        let a2 = agency("650100", "b");
        let k = agency("653100", "k");
        let first = limits.admit(&a1).unwrap();
        let _second = limits.admit(&a1).unwrap();
        let err = limits.admit(&a1).err().unwrap();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.message().contains("per caller"), "{}", err.message());
        let _third = limits.admit(&a2).unwrap();
        let err = limits.admit(&a2).err().unwrap();
        assert!(err.message().contains("per tenant"), "{}", err.message());
        // Another tenant still finds a place; then the gateway is full.
        let _other = limits.admit(&k).unwrap();
        let err = limits.admit(&k).err().unwrap();
        assert!(err.message().contains("gateway"), "{}", err.message());
        drop(first);
        assert!(limits.admit(&a2).is_ok());
    }

    #[test]
    fn rate_limits_each_principal_on_its_own() {
        let mut cfg = LimitsConfig::default();
        cfg.rate_per_second.agency = 3;
        cfg.rate_per_second.department = 0;
        let limits = Limits::new(&cfg);
        let (a, b, d): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "d".into());
        for _ in 0..3 {
            limits.charge(Role::Agency, &a).unwrap();
        }
        let err = limits.charge(Role::Agency, &a).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        // It says when the next call would pass: within the second of three calls.
        let wait = tonic_types::StatusExt::get_details_retry_info(&err)
            .and_then(|r| r.retry_delay)
            .expect("a retry delay");
        assert!(
            wait > std::time::Duration::ZERO && wait <= std::time::Duration::from_millis(334),
            "{wait:?}"
        );
        limits.charge(Role::Agency, &b).unwrap();
        for _ in 0..100 {
            limits.charge(Role::Department, &d).unwrap();
        }
    }
}
