//! The engine's clock: what "now" is for document expiry. Tests set it (one process-wide
//! override) instead of sleeping; everything else reads the system time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The set time plus one; 0 means none is set (the system time runs).
static OVERRIDE: AtomicU64 = AtomicU64::new(0);

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    match OVERRIDE.load(Ordering::Acquire) {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        set => set - 1,
    }
}

/// Sets the time every expiry check sees (None: the system time again). For tests: it
/// changes the clock of the whole process.
#[doc(hidden)]
pub fn set_for_tests(micros: Option<u64>) {
    let stored = micros.map_or(0, |m| m.saturating_add(1).max(1));
    OVERRIDE.store(stored, Ordering::Release);
}
