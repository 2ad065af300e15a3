//! Operation sequences on simulated disks with injected I/O faults and power losses, checked
//! against a model. The logic lives in `tests/support/fuzz_ops.rs`, shared with
//! `tests/fuzz_replay.rs`, which replays `corpus/ops_model` and `regressions/ops_model` under
//! `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/fuzz_ops.rs"]
mod fuzz_ops;

fuzz_target!(|data: &[u8]| {
    let out = fuzz_ops::ops_model(data);
    assert!(
        out.problems.is_empty(),
        "ops_model broke a promise: {:#?}\nlast operations: {:#?}",
        out.problems,
        out.log
    );
});
