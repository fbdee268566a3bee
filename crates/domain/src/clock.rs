use std::time::{SystemTime, UNIX_EPOCH};

/// The source of "now"; tests inject their own.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;

    /// Microseconds since the Unix epoch, the unit timestamps are stored in.
    fn now_micros(&self) -> i64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
