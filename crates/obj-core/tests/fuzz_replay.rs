//! Replays the `open_db` fuzz corpus (and saved crash inputs) through the fuzz target's
//! logic, plus a few thousand deterministic mutations of it, so `cargo test` covers what the
//! fuzzer found without needing libFuzzer or nightly.
//!
//! The work runs in child processes (this binary re-executed, under a 2 GiB address-space
//! limit like libFuzzer's) so that an input making the engine abort (allocation failure)
//! fails one test with the input named. To get the bytes
//! of a failing mutation, rerun with OBJ_FUZZ_REPLAY_SAVE=1: the last input tried is left in
//! `$TMPDIR/open_db-last-input.bin`.

mod support;

use obj_core::{Db, Durability, Options};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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
    let mut last_case = String::new();
    let mut summary = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some((_, case)) = line.split_once("CASE ") {
            last_case = case.to_string();
        } else if line.starts_with("SUMMARY ") {
            summary.push(line);
        }
    }
    let status = child.wait().unwrap();
    let stderr = err.join().unwrap();
    for l in &summary {
        eprintln!("{l}");
    }
    if !status.success() {
        let lines: Vec<&str> = stderr.lines().collect();
        let why = match lines.iter().position(|l| {
            l.contains("memory allocation") || l.contains("panicked") || l.contains("overflow")
        }) {
            Some(i) => lines[i..(i + 3).min(lines.len())].join("\n"),
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
    run(&path.file_name().unwrap().to_string_lossy(), &data);
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
            Options {
                durability: Durability::None,
                checkpoint_frames: u64::MAX,
                ..Options::default()
            },
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
