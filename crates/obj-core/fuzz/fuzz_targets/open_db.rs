//! Opens arbitrary bytes as a database (main file + WAL) read-only and reads everything.
//! The logic lives in `tests/support/fuzz_open.rs`, shared with `tests/fuzz_replay.rs`, which
//! replays `corpus/open_db` and `regressions/open_db` under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/fuzz_open.rs"]
mod fuzz_open;

fuzz_target!(|data: &[u8]| {
    let out = fuzz_open::open_db(data);
    assert!(
        out.inconsistencies.is_empty(),
        "engine answers contradict each other: {:?}",
        out.inconsistencies
    );
});
