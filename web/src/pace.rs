//! The calls the website makes for one visitor's single action (a complaint with its files)
//! are paced to the gateway's rate for that visitor: a call refused with a retry delay is made
//! again once the delay has passed, a few times, rather than failing the visitor's form.

use std::future::Future;
use std::time::Duration;

use tonic::Status;
use tonic_types::StatusExt;

const ATTEMPTS: usize = 4;
/// A longer delay is not waited for: the visitor is told to try again.
const LONGEST_WAIT: Duration = Duration::from_secs(2);

/// `call`'s answer, made again after the delay the gateway asks for while it asks for one.
pub async fn paced<T, F, Fut>(mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if attempt < ATTEMPTS && e.code() == tonic::Code::ResourceExhausted => {
                match e.get_details_retry_info().and_then(|r| r.retry_delay) {
                    Some(wait) if wait <= LONGEST_WAIT => {
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    _ => return Err(e),
                }
            }
            answer => return answer,
        }
    }
}
