//! The whole-file lock (`flock`): shared for every `locking="shared"` handle, exclusive for
//! a `locking="exclusive"` one (and for every writer of builds before several processes
//! could share a file), so those never meet the others. The OS releases it when the
//! holder exits, so a killed process never leaves a stale lock.

use crate::error::{Error, Result};
use std::fs::{File, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn acquire(file: &File, path: &Path, exclusive: bool, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let attempt = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(e.into()),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Busy(format!(
                "{} is open {}; gave up after {:.1}s (raise busy_timeout to wait longer)",
                path.display(),
                if exclusive {
                    "in another handle or process"
                } else {
                    "with locking=\"exclusive\" (or by an older obj build) in another handle \
                     or process"
                },
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
