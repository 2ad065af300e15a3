//! Arbitrary bytes as a schema, typed payloads and a filter: decodes every payload every way,
//! evaluates the filter, and (in database mode) checks index-planned queries against a scan
//! and a model. The logic lives in `tests/support/fuzz_decode.rs`, shared with
//! `tests/fuzz_replay.rs`, which replays `corpus/decode_payload` and
//! `regressions/decode_payload` under `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/fuzz_decode.rs"]
mod fuzz_decode;

fuzz_target!(|data: &[u8]| {
    let out = fuzz_decode::decode_payload(data);
    assert!(
        out.problems.is_empty(),
        "decode_payload broke a promise: {:#?}",
        out.problems
    );
});
