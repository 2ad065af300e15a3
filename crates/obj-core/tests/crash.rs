//! SIGKILL crash test: a child process (this test binary, re-executed) commits numbered
//! transactions forever and acknowledges each on stdout; the parent kills it at a random
//! moment and checks that the database recovers to exactly the state after one commit: every
//! acknowledged commit is there, no transaction is half-applied, integrity_check passes.
//!
//! Env: OBJ_CRASH_SEED (default 1), OBJ_CRASH_ROUNDS (kills per test, default 150),
//! OBJ_CRASH_SECS (time budget per test, default 12; at least 6 rounds always run).
//!
//! SIGKILL loses nothing the process already handed to the kernel, so this covers process
//! crashes (torn multi-page writes included), not power loss.

mod support;

use obj_core::{Db, Durability, Options, Reader};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::Rng;

/// Set (to the database path) only in the child.
const CHILD_ENV: &str = "OBJ_CRASH_CHILD_DB";
const CHILD_FRAMES_ENV: &str = "OBJ_CRASH_CHILD_CHECKPOINT_FRAMES";
const CHILD_DURABILITY_ENV: &str = "OBJ_CRASH_CHILD_DURABILITY";
const CHILD_EXPLICIT_CKPT_ENV: &str = "OBJ_CRASH_CHILD_EXPLICIT_CHECKPOINTS";

/// Slots of collection "b" that transactions rotate through.
const SLOTS: u64 = 50;
/// Each transaction deletes the "log" document of this many transactions earlier.
const LOG_WINDOW: u64 = 20;

fn small(n: u64) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.extend_from_slice(b"-counter");
    v
}

fn slot(n: u64) -> u64 {
    n % SLOTS + 1
}

/// The value transaction `n` writes into its "b" slot: from a few bytes to several overflow
/// pages, so commits span a varying number of pages.
fn big(n: u64) -> Vec<u8> {
    let len = 8 + (n.wrapping_mul(2_654_435_761) % 12_000) as usize;
    let mut v = vec![0u8; len];
    v[..8].copy_from_slice(&n.to_le_bytes());
    for (i, b) in v.iter_mut().enumerate().skip(8) {
        *b = (n as u8).wrapping_mul(31) ^ (i as u8);
    }
    v
}

/// The child: opens the database and commits transaction after transaction until killed.
#[test]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Not the child: nothing to do.
    };
    let frames: u64 = std::env::var(CHILD_FRAMES_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let durability = match std::env::var(CHILD_DURABILITY_ENV).as_deref() {
        Ok("eventual") => Durability::Eventual,
        _ => Durability::Immediate,
    };
    let explicit = std::env::var(CHILD_EXPLICIT_CKPT_ENV).is_ok();
    let db = Db::open(
        &path,
        Options::default()
            .durability(durability)
            .checkpoint_frames(frames),
    )
    .expect("child: open");
    let start = match db.begin_read().unwrap().get("a", 1).unwrap() {
        Some(v) => u64::from_le_bytes(v[..8].try_into().unwrap()),
        None => 0,
    };
    let out = std::io::stdout();
    writeln!(out.lock(), "\nOBJ-START {start}").unwrap();
    out.lock().flush().unwrap();
    let mut n = start;
    loop {
        n += 1;
        let mut tx = db.begin_write().expect("child: begin_write");
        tx.put("a", 1, &small(n)).expect("child: put a");
        tx.put("b", slot(n), &big(n)).expect("child: put b");
        let id = tx.insert("log", &small(n)).expect("child: insert log");
        assert_eq!(id, n, "child: log id");
        if n > LOG_WINDOW {
            assert!(tx.delete("log", n - LOG_WINDOW).expect("child: delete log"));
        }
        tx.commit().expect("child: commit");
        let mut o = out.lock();
        writeln!(o, "OBJ-ACK {n}").unwrap();
        o.flush().unwrap();
        drop(o);
        if explicit && n % 5 == 0 {
            db.checkpoint().expect("child: checkpoint");
        }
    }
}

/// Checks the recovered database; returns the last committed counter.
fn verify(path: &Path, read_only: bool, ctx: &str) -> u64 {
    let db = Db::open(path, Options::default().read_only(read_only))
        .unwrap_or_else(|e| panic!("{ctx}: reopen after the kill failed: {e:?}"));
    let rx = db.begin_read().unwrap();
    let last = match rx
        .get("a", 1)
        .unwrap_or_else(|e| panic!("{ctx}: get a/1: {e:?}"))
    {
        Some(v) => u64::from_le_bytes(v[..8].try_into().unwrap()),
        None => 0,
    };
    if last == 0 {
        for c in ["a", "b", "log"] {
            assert_eq!(
                rx.count(c).unwrap(),
                0,
                "{ctx}: no commit recovered but {c:?} is not empty"
            );
        }
    } else {
        assert_eq!(rx.get("a", 1).unwrap().unwrap().into_vec(), small(last));
        assert_eq!(rx.count("a").unwrap(), 1, "{ctx}: count a");
        // "log" holds exactly the documents of the last LOG_WINDOW transactions.
        let first = last.saturating_sub(LOG_WINDOW - 1).max(1);
        let log: Vec<(u64, Vec<u8>)> = rx
            .iter("log")
            .unwrap()
            .map(|r| {
                let (id, v) = r.unwrap_or_else(|e| panic!("{ctx}: iter log: {e:?}"));
                (id, v.into_vec())
            })
            .collect();
        let want: Vec<(u64, Vec<u8>)> = (first..=last).map(|n| (n, small(n))).collect();
        assert_eq!(
            log.iter().map(|x| x.0).collect::<Vec<_>>(),
            want.iter().map(|x| x.0).collect::<Vec<_>>(),
            "{ctx}: log ids after recovering counter {last} (a partial transaction?)"
        );
        assert!(log == want, "{ctx}: log values differ");
        assert_eq!(
            rx.count("log").unwrap(),
            want.len() as u64,
            "{ctx}: count log"
        );
        // Every "b" slot holds what the latest transaction <= last wrote there.
        let mut expected_b = 0;
        for k in 1..=SLOTS {
            let writer = (last.saturating_sub(SLOTS - 1).max(1)..=last)
                .rev()
                .find(|&m| slot(m) == k);
            let got = rx
                .get("b", k)
                .unwrap_or_else(|e| panic!("{ctx}: get b/{k}: {e:?}"))
                .map(|v| v.into_vec());
            match writer {
                Some(m) => {
                    expected_b += 1;
                    let got = got.unwrap_or_else(|| {
                        panic!("{ctx}: b/{k} (written by txn {m} <= {last}) is missing")
                    });
                    if got != big(m) {
                        let who = u64::from_le_bytes(got[..8].try_into().unwrap());
                        panic!(
                            "{ctx}: b/{k} holds txn {who}'s value ({} bytes), expected txn {m}'s \
                             (last committed counter {last})",
                            got.len()
                        );
                    }
                }
                None => assert!(got.is_none(), "{ctx}: b/{k} should not exist yet"),
            }
        }
        assert_eq!(rx.count("b").unwrap(), expected_b, "{ctx}: count b");
    }
    drop(rx);
    if let Err(e) = db.integrity_check() {
        panic!("{ctx}: integrity_check after recovery: {e}");
    }
    db.close().unwrap();
    last
}

struct Round {
    acked: Option<u64>,
    started: Option<u64>,
    killed_after: Duration,
    exited_by_itself: bool,
    stderr: String,
}

fn run_child(path: &Path, env: &[(&str, String)], kill_after: Duration, wait_start: bool) -> Round {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut lines = Vec::new();
    if wait_start {
        // Wait until the child has opened (and recovered) the database.
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let is_start = l.contains("OBJ-START ");
            lines.push(l);
            if is_start {
                break;
            }
        }
    }
    let t1 = Instant::now();
    std::thread::sleep(kill_after);
    let exited_by_itself = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    let killed_after = t1.elapsed();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let stderr = err_reader.join().unwrap();
    let mut round = Round {
        acked: None,
        started: None,
        killed_after,
        exited_by_itself,
        stderr,
    };
    for l in &lines {
        // libtest may print "test child_writer ... " in front of the first line.
        if let Some((_, n)) = l.split_once("OBJ-ACK ") {
            let n: u64 = n.trim().parse().unwrap();
            assert!(round.acked.is_none_or(|a| n == a + 1), "acks out of order");
            round.acked = Some(n);
        } else if let Some((_, n)) = l.split_once("OBJ-START ") {
            round.started = Some(n.trim().parse().unwrap());
        }
    }
    round
}

/// Child environment variables for one round.
type ChildEnv = Vec<(&'static str, String)>;

fn crash_rounds(name: &str, env_for_round: &dyn Fn(usize, &mut Rng) -> ChildEnv) {
    let seed = support::seeds_from_env("OBJ_CRASH_SEED", &[1])[0]
        ^ support::crc32(0, name.as_bytes()) as u64;
    let rounds = support::env_usize("OBJ_CRASH_ROUNDS", 150);
    let budget = Duration::from_secs(support::env_usize("OBJ_CRASH_SECS", 12) as u64);
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.obj");
    let start = Instant::now();
    let mut last = 0u64; // last committed counter seen by the parent
    let mut total_acks = 0u64;
    let mut in_flight_lost = 0;
    let mut in_flight_kept = 0;
    let mut done = 0;
    for round in 0..rounds {
        if round >= 6 && start.elapsed() > budget {
            break;
        }
        let env = env_for_round(round, &mut rng);
        // Mostly after the child is up; sometimes early enough to hit its open/recovery.
        let wait_start = round == 0 || !rng.chance(15);
        let kill_after = Duration::from_micros(match rng.below(4) {
            0 => rng.below(3_000),
            1 => rng.below(20_000),
            2 => rng.below(80_000),
            _ => rng.below(250_000),
        });
        let r = run_child(&path, &env, kill_after, wait_start);
        let ctx = format!(
            "{name} seed {seed} round {round} (env {env:?}, killed after {:?}, start {:?}, last acked {:?})",
            r.killed_after, r.started, r.acked
        );
        assert!(
            !r.exited_by_itself,
            "{ctx}: the child exited on its own:\n{}",
            r.stderr
        );
        if let Some(s) = r.started {
            assert_eq!(
                s, last,
                "{ctx}: the child recovered counter {s}, the parent had verified {last}"
            );
        }
        // Alternate read-write (recovers and checkpoints) and read-only verification.
        let read_only = rng.chance(40);
        let now = verify(&path, read_only, &ctx);
        let acked = r.acked.unwrap_or(last);
        assert!(
            now >= acked,
            "{ctx}: acknowledged commit {acked} lost: recovered counter is {now}"
        );
        assert!(
            now <= acked + 1,
            "{ctx}: recovered counter {now} was never even attempted (last ack {acked})"
        );
        assert!(now >= last, "{ctx}: counter went back from {last} to {now}");
        if now == acked + 1 {
            in_flight_kept += 1;
        } else if r.acked.is_some() {
            in_flight_lost += 1;
        }
        total_acks += r.acked.map_or(0, |a| a - r.started.unwrap_or(last));
        last = now;
        done += 1;
    }
    assert!(
        total_acks >= 30,
        "{name}: only {total_acks} commits in {done} rounds: the test did not exercise much"
    );
    eprintln!(
        "{name}: {done} kills in {:.1?}, {total_acks} acknowledged commits, final counter {last}; \
         the unacknowledged in-flight commit survived {in_flight_kept} times, was lost {in_flight_lost} times",
        start.elapsed()
    );
}

#[test]
fn sigkill_during_commits() {
    crash_rounds("sigkill_during_commits", &|round, _rng| {
        let d = if round % 2 == 0 {
            "immediate"
        } else {
            "eventual"
        };
        vec![(CHILD_DURABILITY_ENV, d.to_string())]
    });
}

#[test]
fn sigkill_during_checkpoints() {
    crash_rounds("sigkill_during_checkpoints", &|round, rng| {
        let d = if round % 2 == 0 {
            "eventual"
        } else {
            "immediate"
        };
        let mut env = vec![
            (CHILD_DURABILITY_ENV, d.to_string()),
            // Every commit writes 4-7 pages: an automatic checkpoint every one or two commits.
            (CHILD_FRAMES_ENV, rng.range(3, 12).to_string()),
        ];
        if rng.chance(50) {
            env.push((CHILD_EXPLICIT_CKPT_ENV, "1".to_string()));
        }
        env
    });
}

/// The parent's verification must itself detect a broken recovery: a database whose last
/// commit was cut in half by hand (WAL truncated inside the commit) still verifies, because
/// recovery drops the torn commit.
#[test]
fn torn_last_commit_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torn.obj");
    let db = Db::open(&path, Options::default()).unwrap();
    for n in 1..=3u64 {
        let mut tx = db.begin_write().unwrap();
        tx.put("a", 1, &small(n)).unwrap();
        tx.put("b", slot(n), &big(n)).unwrap();
        assert_eq!(tx.insert("log", &small(n)).unwrap(), n);
        tx.commit().unwrap();
    }
    let before = std::fs::metadata(obj_core::wal_path(&path)).unwrap().len();
    let mut tx = db.begin_write().unwrap();
    tx.put("a", 1, &small(4)).unwrap();
    tx.put("b", slot(4), &big(4)).unwrap();
    assert_eq!(tx.insert("log", &small(4)).unwrap(), 4);
    tx.commit().unwrap();
    db.close_without_checkpoint().unwrap();
    drop(db);
    let wal = obj_core::wal_path(&path);
    let after = std::fs::metadata(&wal).unwrap().len();
    assert!(after > before + 4096, "commit 4 should span several frames");
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(after - 100).unwrap();
    drop(f);
    assert_eq!(verify(&path, true, "torn"), 3);
    assert_eq!(verify(&path, false, "torn"), 3);
}
