//! Replays the fuzz corpora (and saved crash inputs) through the fuzz targets' logic, plus
//! deterministic mutations of them, so `cargo test` covers what the fuzzers found without
//! needing libFuzzer or nightly. Targets: `open_db` (`support/fuzz_open.rs`),
//! `decode_payload` (`support/fuzz_decode.rs`) and `ops_model` (`support/fuzz_ops.rs`).
//!
//! The work runs in child processes (this binary re-executed, under a 2 GiB address-space
//! limit like libFuzzer's, and killed by a watchdog if it runs too long) so that an input
//! making the engine abort (allocation failure) or hang fails one test with the input named.
//! To get the bytes of a failing mutation, rerun with OBJ_FUZZ_REPLAY_SAVE=1: the last input
//! tried is left in `$TMPDIR/<target>-last-input.bin`.
//!
//! Replay one file: `OBJ_FUZZ_REPLAY_TARGET=ops_model OBJ_FUZZ_REPLAY_FILE=path cargo test -p
//! obj-core --test fuzz_replay child_replay_one -- --exact --nocapture` with
//! `OBJ_FUZZ_REPLAY_CHILD=1` set.

mod support;

#[path = "support/fuzz_decode.rs"]
mod fuzz_decode;
#[path = "support/fuzz_ops.rs"]
mod fuzz_ops;

use obj_core::{Db, Durability, Options};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::fuzz_open::{self, join_input, split_input, Outcome};
use support::{Rng, SharedMem};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Set in the child processes that do the actual replaying.
const CHILD_ENV: &str = "OBJ_FUZZ_REPLAY_CHILD";
/// Address-space limit of those children.
const MEMORY_LIMIT_KB: u64 = 2 << 20;
/// Wall-clock limit of one child (a whole corpus in a debug build; generous).
const CHILD_TIME_LIMIT: Duration = Duration::from_secs(120);

/// Runs the target on one input; a panic is turned into a failure naming the input. Prints
/// the input's name first so that the parent can name the input of an abort.
fn run(name: &str, data: &[u8]) -> Outcome {
    println!("CASE {name}");
    let d = data.to_vec();
    match std::panic::catch_unwind(move || fuzz_open::open_db(&d)) {
        Ok(out) => {
            assert!(
                out.inconsistencies.is_empty(),
                "{name}: contradictory answers: {:?}",
                out.inconsistencies
            );
            out
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}: the engine panicked: {msg}");
        }
    }
}

/// Runs test `name` of this binary in a child process: an allocation failure or a crash
/// aborts the process, which must fail the test with the input named rather than take the
/// whole test binary down.
fn in_child(name: &str) {
    if let Err(e) = try_in_child(name, &[]) {
        panic!("{e}");
    }
}

/// Like [`in_child`], returning the failure instead of panicking.
fn try_in_child(name: &str, env: &[(&str, &str)]) -> Result<(), String> {
    // Under a 2 GiB address-space limit (libFuzzer's default memory limit), so that an
    // allocation sized by a forged length fails here as it does under the fuzzer, instead of
    // being granted lazily by the kernel.
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if Path::new("/bin/sh").exists() {
        let mut c = Command::new("/bin/sh");
        c.arg("-c")
            .arg(format!("ulimit -v {MEMORY_LIMIT_KB} && exec \"$0\" \"$@\""))
            .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let mut child = cmd
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let out = std::thread::spawn(move || {
        let mut last_case = String::new();
        let mut summary = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some((_, case)) = line.split_once("CASE ") {
                last_case = case.to_string();
            } else if line.starts_with("SUMMARY ") {
                summary.push(line);
            }
        }
        (last_case, summary)
    });
    // The watchdog: an input that makes the engine hang fails the test instead of stalling it.
    let deadline = Instant::now() + CHILD_TIME_LIMIT;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (last_case, summary) = out.join().unwrap();
    let stderr = err.join().unwrap();
    if timed_out {
        return Err(format!(
            "{name}: the child process ran longer than {CHILD_TIME_LIMIT:?} (a hang?) on input {last_case:?}"
        ));
    }
    for l in &summary {
        eprintln!("{l}");
    }
    if !status.success() {
        let lines: Vec<&str> = stderr.lines().collect();
        let why = match lines.iter().position(|l| {
            l.contains("memory allocation") || l.contains("panicked") || l.contains("overflow")
        }) {
            Some(i) => lines[i..(i + 12).min(lines.len())].join("\n"),
            None => lines
                .iter()
                .rev()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join("\n"),
        };
        return Err(format!(
            "{name}: the child process failed ({status}) on input {last_case:?}:\n{why}"
        ));
    }
    Ok(())
}

fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

#[test]
fn replay_corpus() {
    in_child("child_replay_corpus");
}

#[test]
fn child_replay_corpus() {
    if !is_child() {
        return;
    }
    let corpus = inputs(&fuzz_dir().join("corpus/open_db"));
    let valid = corpus
        .iter()
        .filter(|(n, _)| n.starts_with("valid-"))
        .count();
    assert!(
        valid >= 4 && corpus.len() >= 8,
        "the seed corpus is missing ({} files, {valid} valid); regenerate it with \
         `cargo test -p obj-core --test fuzz_replay -- --ignored write_seed_corpus`",
        corpus.len()
    );
    for (name, data) in &corpus {
        let out = run(name, data);
        if name.starts_with("valid-") {
            // The valid seeds must really open and read cleanly, or the fuzzer starts from
            // nothing useful.
            assert!(out.open_error.is_none(), "{name}: {:?}", out.open_error);
            assert_eq!(out.read_errors, 0, "{name}: read errors");
            assert_eq!(out.integrity_ok, Some(true), "{name}: integrity");
            assert!(out.documents > 0, "{name}: no documents");
        }
    }
    println!("SUMMARY {} corpus inputs ({valid} valid)", corpus.len());
}

/// Inputs that once made the engine fail (`fuzz/regressions/open_db`), each in its own child
/// process so that every failing one is reported.
#[test]
fn replay_regressions() {
    let dir = fuzz_dir().join("regressions/open_db");
    let files = inputs(&dir);
    let mut failures = Vec::new();
    for (name, _) in &files {
        let path = dir.join(name);
        let path = path.to_str().unwrap();
        if let Err(e) = try_in_child("child_replay_one", &[("OBJ_FUZZ_REPLAY_FILE", path)]) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} regression inputs fail:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn child_replay_one() {
    if !is_child() {
        return;
    }
    let path = PathBuf::from(std::env::var_os("OBJ_FUZZ_REPLAY_FILE").unwrap());
    let data = std::fs::read(&path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    match std::env::var("OBJ_FUZZ_REPLAY_TARGET").as_deref() {
        Ok("decode_payload") => run_target(Target::DecodePayload, &name, &data),
        Ok("ops_model") => run_target(Target::OpsModel, &name, &data),
        _ => {
            run(&name, &data);
        }
    }
}

/// Deterministic mutations of every seed (what a fuzzer does first), in `cargo test`.
#[test]
fn mutated_corpus_smoke() {
    in_child("child_mutated_corpus_smoke");
}

#[test]
fn child_mutated_corpus_smoke() {
    if !is_child() {
        return;
    }
    let corpus = inputs(&fuzz_dir().join("corpus/open_db"));
    assert!(!corpus.is_empty());
    let per_file = support::env_usize("OBJ_FUZZ_REPLAY_MUTATIONS", 300);
    let mut rng = Rng::new(support::seeds_from_env("OBJ_FUZZ_REPLAY_SEED", &[1])[0]);
    let mut opened = 0;
    let mut total = 0;
    for (name, data) in &corpus {
        for i in 0..per_file {
            let mut d = data.clone();
            let what = mutate(&mut rng, &mut d);
            let label = format!("{name} mutation {i} ({what})");
            if std::env::var_os("OBJ_FUZZ_REPLAY_SAVE").is_some() {
                std::fs::write(std::env::temp_dir().join("open_db-last-input.bin"), &d).unwrap();
            }
            let out = run(&label, &d);
            total += 1;
            if out.open_error.is_none() {
                opened += 1;
            }
        }
    }
    println!("SUMMARY {total} mutated inputs, {opened} opened");
}

fn mutate(rng: &mut Rng, d: &mut Vec<u8>) -> String {
    if d.len() < 8 {
        d.extend(rng.bytes(8));
    }
    match rng.below(6) {
        0 => {
            let n = rng.range(1, 8);
            for _ in 0..n {
                let at = rng.below(d.len() as u64) as usize;
                d[at] ^= 1 << rng.below(8);
            }
            format!("{n} bit flips")
        }
        1 => {
            let at = rng.below(d.len() as u64) as usize;
            d.truncate(at);
            format!("cut at {at}")
        }
        2 => {
            let at = rng.below(d.len() as u64) as usize;
            let n = rng.range(1, 64) as usize;
            let end = (at + n).min(d.len());
            rng.fill(&mut d[at..end]);
            format!("random bytes at {at}..{end}")
        }
        3 => {
            // Move the main/WAL split point; sometimes toggle reseal mode.
            let split = rng.below(d.len() as u64) as u32
                | if rng.chance(30) { fuzz_open::RESEAL } else { 0 };
            d[..4].copy_from_slice(&split.to_le_bytes());
            format!("split at {split}")
        }
        4 => {
            let n = rng.range(1, 5000) as usize;
            d.extend(rng.bytes(n));
            format!("{n} bytes appended")
        }
        _ => {
            // Interesting integers over 8-byte fields (page numbers, counts).
            let at = rng.below(d.len().saturating_sub(8).max(1) as u64) as usize;
            let v = *rng.pick(&[0u64, 1, 2, 0xff, 0xffff, u32::MAX as u64, u64::MAX, 1 << 40]);
            let end = (at + 8).min(d.len());
            d[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            format!("u64 {v} at {at}")
        }
    }
}

/// Writes the seed corpus: small valid databases with data in the WAL, in the main file and
/// in both, and damaged variants. Run by hand after format changes:
/// `cargo test -p obj-core --test fuzz_replay -- --ignored write_seed_corpus`.
#[test]
#[ignore]
fn write_seed_corpus() {
    let dir = fuzz_dir().join("corpus/open_db");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, _) in inputs(&dir) {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    let mut rng = Rng::new(7);
    let build = |commits: &[&[(&str, Vec<u8>)]], checkpoint_after: Option<usize>| {
        let (main, wal) = (SharedMem::new(), SharedMem::new());
        let db = Db::open_with_backends(
            Box::new(main.clone()),
            Box::new(wal.clone()),
            Options::default()
                .durability(Durability::None)
                .checkpoint_frames(u64::MAX),
        )
        .unwrap();
        for (i, docs) in commits.iter().enumerate() {
            let mut tx = db.begin_write().unwrap();
            for (coll, v) in docs.iter() {
                tx.insert(coll, v).unwrap();
            }
            tx.commit().unwrap();
            if Some(i) == checkpoint_after {
                assert!(db.checkpoint().unwrap().wal_reset);
            }
        }
        db.close_without_checkpoint().unwrap();
        drop(db);
        (main.contents(), wal.contents())
    };
    let small = |s: &str| s.as_bytes().to_vec();
    let overflow = rng.bytes(6000);
    type Store = (Vec<u8>, Vec<u8>);
    let seeds: Vec<(&str, Store)> = vec![
        ("valid-wal-only", build(&[&[("c", small("hello"))]], None)),
        (
            "valid-wal-two-collections",
            build(
                &[
                    &[("c", small("one")), ("d", small("two"))],
                    &[("c", small("three"))],
                ],
                None,
            ),
        ),
        (
            "valid-main-only",
            build(
                &[&[("c", small("in the main file")), ("d", vec![])]],
                Some(0),
            ),
        ),
        (
            "valid-main-and-wal",
            build(
                &[
                    &[("c", small("checkpointed"))],
                    &[("c", small("in the wal"))],
                ],
                Some(0),
            ),
        ),
        (
            "valid-overflow-in-wal",
            build(
                &[&[("big", overflow.clone()), ("big", small("small"))]],
                None,
            ),
        ),
        (
            "valid-overflow-in-main",
            build(&[&[("big", overflow.clone())]], Some(0)),
        ),
    ];
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, (main, wal)) in &seeds {
        files.push((format!("{name}.bin"), join_input(main, wal, false)));
    }
    // The same in reseal mode, where the fuzzer's changes keep valid checksums.
    for (name, (main, wal)) in &seeds {
        let name = name.trim_start_matches("valid-");
        files.push((
            format!("valid-resealed-{name}.bin"),
            join_input(main, wal, true),
        ));
    }
    // Damaged variants of some of the valid ones.
    for (name, (main, wal)) in &seeds {
        let name = name.trim_start_matches("valid-");
        if !["wal-only", "main-and-wal", "overflow-in-main"].contains(&name) {
            continue;
        }
        if wal.len() > 200 {
            let cut = wal.len() - 1000;
            files.push((
                format!("torn-wal-{name}.bin"),
                join_input(main, &wal[..cut], false),
            ));
            let mut w = wal.clone();
            w[wal.len() / 2] ^= 0x40;
            files.push((
                format!("flipped-wal-{name}.bin"),
                join_input(main, &w, false),
            ));
        }
        let mut m = main.clone();
        let at = main.len() - 5000;
        m[at] ^= 0x02;
        files.push((
            format!("flipped-main-{name}.bin"),
            join_input(&m, wal, false),
        ));
        // Structural damage behind valid checksums: a cell count and a child pointer.
        let mut m = main.clone();
        if m.len() >= 2 * 4096 {
            m[4096 + 2] = 0xff;
            files.push((
                format!("resealed-bad-count-{name}.bin"),
                join_input(&m, wal, true),
            ));
        }
    }
    files.push(("empty.bin".into(), Vec::new()));
    files.push((
        "magic-only.bin".into(),
        join_input(b"\x89OBJdb\r\n", &[], false),
    ));
    files.push(("junk.bin".into(), rng.bytes(600)));
    let mut total = 0;
    for (name, bytes) in &files {
        // Sanity: the split reproduces the parts.
        let (m, w, _) = split_input(bytes);
        assert_eq!(m.len() + w.len() + 4.min(bytes.len()), bytes.len());
        std::fs::write(dir.join(name), bytes).unwrap();
        total += bytes.len();
    }
    eprintln!("wrote {} seed files, {total} bytes", files.len());
}

// ---------------------------------------------------------------------------------------
// decode_payload and ops_model

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    DecodePayload,
    OpsModel,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::DecodePayload => "decode_payload",
            Target::OpsModel => "ops_model",
        }
    }

    fn of(name: &str) -> Target {
        match name {
            "decode_payload" => Target::DecodePayload,
            "ops_model" => Target::OpsModel,
            other => panic!("unknown fuzz target {other:?}"),
        }
    }
}

/// Runs a target on one input like the fuzz target does: a panic or a broken promise fails,
/// naming the input.
fn run_target(target: Target, name: &str, data: &[u8]) {
    println!("CASE {name}");
    if std::env::var_os("OBJ_FUZZ_REPLAY_SAVE").is_some() {
        let file = std::env::temp_dir().join(format!("{}-last-input.bin", target.name()));
        std::fs::write(file, data).unwrap();
    }
    let d = data.to_vec();
    let result = std::panic::catch_unwind(move || match target {
        Target::DecodePayload => {
            let out = fuzz_decode::decode_payload(&d);
            (out.problems, Vec::new())
        }
        Target::OpsModel => {
            let out = fuzz_ops::ops_model(&d);
            (out.problems, out.log)
        }
    });
    match result {
        Ok((problems, log)) => assert!(
            problems.is_empty(),
            "{name}: {} broke a promise:\n{}\nlast operations:\n{}",
            target.name(),
            problems.join("\n"),
            log.join("\n")
        ),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}: the engine panicked under {}: {msg}", target.name());
        }
    }
}

/// Corpus, then mutations of it, of one target, in one child process. Every bug the
/// fuzzers reported is fixed, so nothing is steered around (`OBJ_FUZZ_SKIP_KNOWN_BUGS` is
/// not set): a mutation that finds one again fails here.
fn replay_target_in_child(target: Target, what: &str) {
    if let Err(e) = try_in_child(
        "child_replay_target",
        &[
            ("OBJ_FUZZ_REPLAY_TARGET", target.name()),
            ("OBJ_FUZZ_REPLAY_WHAT", what),
        ],
    ) {
        panic!("{e}");
    }
}

#[test]
fn child_replay_target() {
    if !is_child() {
        return;
    }
    let target = Target::of(&std::env::var("OBJ_FUZZ_REPLAY_TARGET").unwrap());
    let corpus = inputs(&fuzz_dir().join("corpus").join(target.name()));
    assert!(
        corpus.len() >= 8,
        "the {} seed corpus is missing ({} files); regenerate it with \
         `cargo test -p obj-core --test fuzz_replay -- --ignored write_seed_corpus_{}`",
        target.name(),
        corpus.len(),
        target.name()
    );
    match std::env::var("OBJ_FUZZ_REPLAY_WHAT").as_deref() {
        Ok("corpus") => {
            for (name, data) in &corpus {
                run_target(target, name, data);
            }
            println!("SUMMARY {}: {} corpus inputs", target.name(), corpus.len());
        }
        _ => {
            let default = match target {
                Target::DecodePayload => 150,
                Target::OpsModel => 8,
            };
            let per_file = support::env_usize("OBJ_FUZZ_REPLAY_MUTATIONS", default);
            let mut rng = Rng::new(support::seeds_from_env("OBJ_FUZZ_REPLAY_SEED", &[1])[0]);
            let mut total = 0;
            for (name, data) in &corpus {
                for i in 0..per_file {
                    let mut d = data.clone();
                    let what = mutate_bytes(&mut rng, &mut d);
                    run_target(target, &format!("{name} mutation {i} ({what})"), &d);
                    total += 1;
                }
            }
            println!("SUMMARY {}: {total} mutated inputs", target.name());
        }
    }
}

/// Generic mutations for the structured targets (every byte string is a valid input).
fn mutate_bytes(rng: &mut Rng, d: &mut Vec<u8>) -> String {
    if d.is_empty() {
        d.extend(rng.bytes(16));
    }
    match rng.below(5) {
        0 => {
            let n = rng.range(1, 4);
            for _ in 0..n {
                let at = rng.below(d.len() as u64) as usize;
                d[at] ^= 1 << rng.below(8);
            }
            format!("{n} bit flips")
        }
        1 => {
            let at = rng.below(d.len() as u64) as usize;
            d[at] = rng.next_u64() as u8;
            format!("byte {at} replaced")
        }
        2 => {
            let at = rng.below(d.len() as u64) as usize;
            let n = rng.range(1, 16) as usize;
            let bytes = rng.bytes(n);
            d.splice(at..at, bytes);
            format!("{n} bytes inserted at {at}")
        }
        3 => {
            let at = rng.below(d.len() as u64) as usize;
            let end = (at + rng.range(1, 16) as usize).min(d.len());
            d.drain(at..end);
            format!("bytes {at}..{end} removed")
        }
        _ => {
            let at = rng.below(d.len() as u64) as usize;
            d.truncate(at.max(1));
            format!("cut at {at}")
        }
    }
}

/// Inputs that once broke a target (`fuzz/regressions/<target>`), each in its own child.
fn replay_target_regressions(target: Target) {
    let dir = fuzz_dir().join("regressions").join(target.name());
    let files = inputs(&dir);
    let mut failures = Vec::new();
    for (name, _) in &files {
        let path = dir.join(name);
        let path = path.to_str().unwrap();
        if let Err(e) = try_in_child(
            "child_replay_one",
            &[
                ("OBJ_FUZZ_REPLAY_FILE", path),
                ("OBJ_FUZZ_REPLAY_TARGET", target.name()),
            ],
        ) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {} regression inputs fail:\n\n{}",
        failures.len(),
        files.len(),
        target.name(),
        failures.join("\n\n")
    );
}

#[test]
fn decode_payload_corpus() {
    replay_target_in_child(Target::DecodePayload, "corpus");
}

#[test]
fn decode_payload_mutations() {
    replay_target_in_child(Target::DecodePayload, "mutations");
}

#[test]
fn decode_payload_regressions() {
    replay_target_regressions(Target::DecodePayload);
}

#[test]
fn ops_model_corpus() {
    replay_target_in_child(Target::OpsModel, "corpus");
}

#[test]
fn ops_model_mutations() {
    replay_target_in_child(Target::OpsModel, "mutations");
}

#[test]
fn ops_model_regressions() {
    replay_target_regressions(Target::OpsModel);
}

/// A schema with every field type, for seeds that parse their schema from bytes.
fn sample_schema() -> obj_core::codec::Schema {
    use obj_core::codec::{Datum, EnumType, Field, FieldType as T, Schema, StructType};
    let f = |name: &str, ty: T| Field {
        name: name.into(),
        ty,
    };
    Schema {
        version: 3,
        root: StructType {
            fields: vec![
                f("id", T::Int),
                f("tags", T::List(Box::new(T::Str))),
                f(
                    "addr",
                    T::Optional(Box::new(T::Struct(StructType {
                        fields: vec![f("city", T::Str), f("zip", T::Int)],
                    }))),
                ),
                f(
                    "color",
                    T::Enum(EnumType {
                        members: vec![
                            ("RED".into(), Datum::Int(1)),
                            ("BLUE".into(), Datum::Str("b".into())),
                        ],
                    }),
                ),
                f("pair", T::Tuple(vec![T::Float, T::Bytes])),
                f("m", T::Map(Box::new(T::Any))),
                f("ok", T::Bool),
                f("when", T::DateTime),
                f("day", T::Date),
                f("u", T::Uuid),
                f("nothing", T::NoneType),
                f("score", T::Float),
            ],
        },
    }
}

/// Writes the `decode_payload` seed corpus. Run by hand after codec changes:
/// `cargo test -p obj-core --test fuzz_replay -- --ignored write_seed_corpus_decode_payload`.
#[test]
#[ignore]
fn write_seed_corpus_decode_payload() {
    use obj_core::codec::{Datum, Field, FieldType, Schema, StructType};
    let dir = fuzz_dir().join("corpus/decode_payload");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, _) in inputs(&dir) {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    let mut rng = Rng::new(21);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    // Built schemas and generated payloads: pure decoding, then database mode with 1-4
    // documents, indexes built before or after inserting.
    for flags in [0x03u8, 0x07, 0x0f, 0x17, 0x27, 0x37, 0x3f] {
        for i in 0..5 {
            let n = rng.range(40, 300) as usize;
            let mut d = vec![flags];
            d.extend(rng.bytes(n));
            files.push((format!("gen-{flags:02x}-{i}.bin"), d));
        }
    }
    let sample = sample_schema().to_bytes();
    let with_schema = |flags: u8, schema: &[u8]| {
        let mut d = vec![flags];
        d.extend_from_slice(&(schema.len() as u16).to_le_bytes());
        d.extend_from_slice(schema);
        d
    };
    // A parsed schema with every type; payloads generated from it.
    for (flags, count) in [(0x02u8, 3), (0x06, 2), (0x36, 2), (0x3e, 2)] {
        for i in 0..count {
            let mut d = with_schema(flags, &sample);
            let n = rng.range(60, 300) as usize;
            d.extend(rng.bytes(n));
            files.push((format!("parsed-sample-gen-{flags:02x}-{i}.bin"), d));
        }
    }
    // The same schema with raw payloads (valid encodings made by the generator) and a filter.
    for (flags, docs) in [(0x00u8, 1), (0x04, 1), (0x34, 4)] {
        for i in 0..2 {
            let mut d = with_schema(flags, &sample);
            let schema = sample_schema();
            for _ in 0..docs {
                let choices = rng.bytes(200);
                let mut payload = Vec::new();
                let mut inp = fuzz_decode::Input::new(&choices);
                for f in &schema.root.fields {
                    fuzz_decode::gen_payload(&f.ty, &mut inp, &mut payload).unwrap();
                }
                d.extend_from_slice(&(payload.len() as u16).to_le_bytes());
                d.extend_from_slice(&payload);
            }
            d.extend(rng.bytes(40));
            files.push((format!("parsed-sample-raw-{flags:02x}-{i}.bin"), d));
        }
    }
    // Value-codec payloads under a one-field `any` schema: the typed and the self-describing
    // decoders read the same bytes.
    let any = Schema {
        version: 1,
        root: StructType {
            fields: vec![Field {
                name: "a".into(),
                ty: FieldType::Any,
            }],
        },
    };
    let value = Datum::Map(vec![
        ("n".into(), Datum::Null),
        ("b".into(), Datum::Bool(true)),
        ("i".into(), Datum::Int(-7)),
        ("f".into(), Datum::Float(2.5)),
        ("s".into(), Datum::Str("é\0x".into())),
        ("y".into(), Datum::Bytes(vec![0, 255])),
        (
            "l".into(),
            Datum::List(vec![Datum::Int(1), Datum::List(vec![])]),
        ),
        (
            "t".into(),
            Datum::DateTime {
                micros: -5,
                offset_secs: Some(3600),
            },
        ),
        ("d".into(), Datum::Date(19000)),
        ("q".into(), Datum::Uuid([7; 16])),
    ]);
    for flags in [0x00u8, 0x04] {
        let mut d = with_schema(flags, &any.to_bytes());
        let payload = value.to_bytes();
        d.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        d.extend_from_slice(&payload);
        d.extend(rng.bytes(30));
        files.push((format!("value-codec-{flags:02x}.bin"), d));
    }
    files.push(("empty.bin".into(), Vec::new()));
    files.push(("junk.bin".into(), rng.bytes(200)));
    let mut total = 0;
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
        total += bytes.len();
    }
    eprintln!("wrote {} seed files, {total} bytes", files.len());
}

/// Writes the `ops_model` seed corpus: every durability, fault kind and ending, with random
/// operations. Run by hand after changing the input layout:
/// `cargo test -p obj-core --test fuzz_replay -- --ignored write_seed_corpus_ops_model`.
#[test]
#[ignore]
fn write_seed_corpus_ops_model() {
    let dir = fuzz_dir().join("corpus/ops_model");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, _) in inputs(&dir) {
        std::fs::remove_file(dir.join(name)).unwrap();
    }
    let mut rng = Rng::new(31);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: String, cfg: u8, frames: u8, fault: u8, nth: u16, ops: usize| {
        let mut d = vec![cfg, frames, fault];
        d.extend_from_slice(&nth.to_le_bytes());
        d.push(rng.next_u64() as u8);
        d.extend(rng.bytes(ops));
        files.push((name, d));
    };
    // No faults: each durability, with and without compression, small cache, 8 KiB pages,
    // frequent automatic checkpoints; ending in an exit or a power loss.
    for (i, cfg) in [0x00u8, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x21, 0x40, 0x2d]
        .into_iter()
        .enumerate()
    {
        let frames = if i % 2 == 0 { 0 } else { 7 };
        add(format!("nofault-{cfg:02x}-{i}.bin"), cfg, frames, 0, 0, 700);
    }
    // One fault of each kind, once or from then on, early and late, in each durability.
    let kinds = [
        (3u8, "read"),
        (4, "write"),
        (5, "sync"),
        (6, "setlen"),
        (7, "any"),
    ];
    for (k, name) in kinds {
        for sticky in [false, true] {
            for (j, nth) in [2u16, 9, 25, 60].into_iter().enumerate() {
                let cfg = [0x00u8, 0x21, 0x08, 0x61][j] | if k == 3 { 0x08 } else { 0 };
                let fault = k | if sticky { 0x80 } else { 0 };
                add(
                    format!(
                        "fault-{name}-{}-{nth}.bin",
                        if sticky { "sticky" } else { "once" }
                    ),
                    cfg,
                    5 + j as u8,
                    fault,
                    nth,
                    400,
                );
            }
        }
    }
    // Keyed collections beside the id ones (configuration bit 7), written after the files
    // above so those stay byte for byte what they were: no faults in each durability and
    // ending, then one fault of three kinds.
    for (i, cfg) in [0x80u8, 0x81, 0xa2, 0x8c, 0x94, 0xe1]
        .into_iter()
        .enumerate()
    {
        let frames = if i % 2 == 0 { 0 } else { 7 };
        add(
            format!("keyed-nofault-{cfg:02x}-{i}.bin"),
            cfg,
            frames,
            0,
            0,
            700,
        );
    }
    for (k, name, nth) in [(4u8, "write", 25u16), (5, "sync", 9), (7, "any", 60)] {
        add(
            format!("keyed-fault-{name}-once-{nth}.bin"),
            0xa1,
            6,
            k,
            nth,
            400,
        );
    }
    let mut total = 0;
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
        total += bytes.len();
    }
    eprintln!("wrote {} seed files, {total} bytes", files.len());
}
