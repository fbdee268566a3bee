//! The one way a gRPC method of a service runs: the request is checked first (a refusal is
//! audited on its own, since it never reached the database), then the use case acts (its
//! write path audits its own outcome), and the domain error becomes a status once, here.

use std::future::Future;

use creditmesh_domain::Error;
use creditmesh_domain::PrincipalKind;
use tonic::{Request, Response, Status};

use crate::context::{Authn, CallContext};
use crate::error::status;
use crate::store::ServiceStore;

/// Who calls and what they sent: the caller named from the call (and refused unless one of
/// `roles`; any caller when `roles` is empty), then the request read.
pub fn caller<R>(
    authn: &Authn,
    request: Request<R>,
    roles: &[PrincipalKind],
) -> Result<(CallContext, R), Status> {
    let ctx = authn.context(&request)?;
    if !roles.is_empty() {
        ctx.require(roles)?;
    }
    Ok((ctx, request.into_inner()))
}

/// A state-changing call: `checked` is the request after validation; `act` performs it.
pub async fn call<V, T, Fut>(
    store: &ServiceStore,
    ctx: &CallContext,
    method: &str,
    checked: Result<V, Error>,
    act: impl FnOnce(V) -> Fut,
) -> Result<Response<T>, Status>
where
    Fut: Future<Output = Result<T, Error>>,
{
    match checked {
        Ok(valid) => run(store, ctx, method, act(valid)).await,
        Err(e) => Err(status(store.reject(ctx, method, e).await)),
    }
}

/// A state-changing call written as one future: whatever refusal it ends in is audited once
/// (the write path audits its own failures; anything refused before it is audited here).
pub async fn run<T, Fut>(
    store: &ServiceStore,
    ctx: &CallContext,
    method: &str,
    act: Fut,
) -> Result<Response<T>, Status>
where
    Fut: Future<Output = Result<T, Error>>,
{
    match act.await {
        Ok(v) => Ok(Response::new(v)),
        Err(e) if ctx.audited.load(std::sync::atomic::Ordering::Relaxed) => Err(status(e)),
        Err(e) => Err(status(store.reject(ctx, method, e).await)),
    }
}

/// A call refused before its request is read (a quota, say): the refusal is audited and
/// answered.
pub async fn refuse<T>(
    store: &ServiceStore,
    ctx: &CallContext,
    method: &str,
    e: Error,
) -> Result<Response<T>, Status> {
    Err(status(store.reject(ctx, method, e).await))
}

/// The status a stream ends with when its use case fails after the stream began.
pub fn ended(e: Error) -> Status {
    status(e)
}

/// A read: nothing is audited, the error becomes a status once.
pub async fn read<T, Fut>(act: Fut) -> Result<Response<T>, Status>
where
    Fut: Future<Output = Result<T, Error>>,
{
    act.await.map(Response::new).map_err(status)
}
