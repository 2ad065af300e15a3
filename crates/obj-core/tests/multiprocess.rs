//! Several processes on one database file: writers take turns through the exclusive file
//! lock (`busy_timeout`), and the parent SIGKILLs some of them at random moments — while
//! they wait for the lock, while they commit, while they close. At the end every
//! acknowledged commit of every writer is there, no transaction is half-applied, and
//! `integrity_check` passes. Each writer also checks, right after its open, that the state
//! its predecessors left (killed or not) is whole.
//!
//! The children are this test binary, re-executed (like `crash.rs`).
//!
//! Env: OBJ_MP_SECS (how long new writers are started, default 6), OBJ_MP_SEED (default 1).

mod support;

use obj_core::{Db, Durability, Options, Reader};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::Rng;

/// Set (to the database path) only in the children.
const CHILD_DB: &str = "OBJ_MP_CHILD_DB";
const CHILD_ID: &str = "OBJ_MP_CHILD_ID";
const CHILD_DURABILITY: &str = "OBJ_MP_CHILD_DURABILITY";
/// Each transaction deletes the log entry of this many transactions earlier.
const WINDOW: u64 = 3;
/// Transactions per turn (one open .. close) and turns per process.
const TXNS_PER_TURN: u64 = 4;
const TURNS: u64 = 3;

/// The log key of transaction `n` of writer `w`: writer in the high half, so a writer's
/// entries are contiguous in id order.
fn log_key(w: u64, n: u64) -> u64 {
    (w << 32) | n
}

fn small(w: u64, n: u64) -> Vec<u8> {
    let mut v = w.to_le_bytes().to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    v
}

/// The value transaction `n` of writer `w` gives its "big" slot: from a few bytes to
/// several overflow pages, so commits span a varying number of pages.
fn big(w: u64, n: u64) -> Vec<u8> {
    let len = 16 + ((w * 7919 + n).wrapping_mul(2_654_435_761) % 14_000) as usize;
    let mut v = small(w, n);
    v.extend((16..len).map(|i| (i as u8) ^ (n as u8).wrapping_mul(31) ^ (w as u8)));
    v
}

/// Checks the whole database: for every writer, its last transaction `n` (in "by-writer")
/// must come with exactly the log entries `n-WINDOW+1 ..= n` and its "big" slot from `n`.
/// Returns each writer's last transaction.
fn check_whole<R: Reader>(r: &R, ctx: &str) -> BTreeMap<u64, u64> {
    let mut last = BTreeMap::new();
    for item in r.iter("by-writer").unwrap() {
        let (w, v) = item.unwrap_or_else(|e| panic!("{ctx}: iter by-writer: {e:?}"));
        assert_eq!(v.len(), 8, "{ctx}: by-writer/{w} has {} bytes", v.len());
        last.insert(w, u64::from_le_bytes(v[..8].try_into().unwrap()));
    }
    let mut log: BTreeMap<u64, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for item in r.iter("log").unwrap() {
        let (k, v) = item.unwrap_or_else(|e| panic!("{ctx}: iter log: {e:?}"));
        log.entry(k >> 32)
            .or_default()
            .push((k & 0xffff_ffff, v.into_vec()));
    }
    for (w, entries) in &log {
        let n = *last.get(w).unwrap_or_else(|| {
            panic!(
                "{ctx}: log entries of writer {w}, which never committed (a partial transaction)"
            )
        });
        let want: Vec<(u64, Vec<u8>)> = (n.saturating_sub(WINDOW - 1).max(1)..=n)
            .map(|m| (m, small(*w, m)))
            .collect();
        assert!(
            *entries == want,
            "{ctx}: writer {w} (last transaction {n}) has log entries {:?}, expected {:?}",
            entries.iter().map(|e| e.0).collect::<Vec<_>>(),
            want.iter().map(|e| e.0).collect::<Vec<_>>()
        );
    }
    for (w, n) in &last {
        assert!(
            log.contains_key(w),
            "{ctx}: writer {w} committed {n} but has no log entries"
        );
        let got = r
            .get("big", *w)
            .unwrap_or_else(|e| panic!("{ctx}: get big/{w}: {e:?}"))
            .unwrap_or_else(|| panic!("{ctx}: big/{w} missing (last transaction {n})"));
        if *got != *big(*w, *n) {
            let who = u64::from_le_bytes(got[8..16].try_into().unwrap());
            panic!("{ctx}: big/{w} holds transaction {who}'s value, expected {n}'s");
        }
    }
    assert_eq!(
        r.count("big").unwrap(),
        last.len() as u64,
        "{ctx}: count big"
    );
    assert_eq!(
        r.count("log").unwrap(),
        log.values().map(|v| v.len() as u64).sum::<u64>(),
        "{ctx}: count log"
    );
    last
}

/// The child: takes turns at the database (open, waiting for the lock; commit a few
/// transactions, acknowledging each on stdout; close) until its turns are done or it is
/// killed.
#[test]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return; // Not a child.
    };
    let w: u64 = std::env::var(CHILD_ID).unwrap().parse().unwrap();
    let durability = match std::env::var(CHILD_DURABILITY).as_deref() {
        Ok("eventual") => Durability::Eventual,
        _ => Durability::Immediate,
    };
    let out = std::io::stdout();
    let say = |s: String| {
        let mut o = out.lock();
        writeln!(o, "{s}").unwrap();
        o.flush().unwrap();
    };
    let mut n = 0u64;
    for turn in 0..TURNS {
        say(format!("\nOBJ-WAIT {w} {turn}"));
        let db = Db::open(
            &path,
            Options::default()
                .durability(durability)
                .busy_timeout(Duration::from_secs(60))
                // Small: some turns end with an automatic checkpoint.
                .checkpoint_frames(24),
        )
        .expect("child: open");
        // What the predecessors left must be whole, whatever happened to them.
        let last = check_whole(&db.begin_read().unwrap(), &format!("writer {w} at open"));
        assert_eq!(
            last.get(&w).copied().unwrap_or(0),
            n,
            "writer {w}: its own last commit is not what it acknowledged"
        );
        say(format!("OBJ-OPEN {w} {turn}"));
        for _ in 0..TXNS_PER_TURN {
            n += 1;
            let mut tx = db.begin_write().expect("child: begin_write");
            tx.put("by-writer", w, &n.to_le_bytes()).unwrap();
            tx.put("log", log_key(w, n), &small(w, n)).unwrap();
            tx.put("big", w, &big(w, n)).unwrap();
            if n > WINDOW {
                assert!(tx.delete("log", log_key(w, n - WINDOW)).unwrap());
            }
            tx.commit().expect("child: commit");
            say(format!("OBJ-ACK {w} {n}"));
        }
        if turn % 2 == 1 {
            db.checkpoint().expect("child: checkpoint");
        }
        db.close().expect("child: close");
        drop(db);
        say(format!("OBJ-CLOSED {w} {turn}"));
    }
    say(format!("OBJ-DONE {w}"));
}

struct Running {
    w: u64,
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

/// What the parent learned about one writer process.
#[derive(Debug, Default)]
struct Seen {
    acked: u64,
    opened: u64,
    closed: u64,
    done: bool,
    killed: bool,
}

fn spawn(path: &Path, w: u64, durability: &str) -> Running {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, path)
        .env(CHILD_ID, w.to_string())
        .env(CHILD_DURABILITY, durability)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    Running {
        w,
        child,
        lines: rx,
        stderr,
    }
}

fn absorb(seen: &mut BTreeMap<u64, Seen>, w: u64, line: &str) {
    let s = seen.entry(w).or_default();
    let field = |tag: &str| {
        line.split_once(tag).map(|(_, rest)| {
            let mut it = rest.split_whitespace();
            let who: u64 = it.next().unwrap().parse().unwrap();
            assert_eq!(who, w, "line {line:?} from writer {w}");
            it.next().map(|x| x.parse::<u64>().unwrap())
        })
    };
    if let Some(n) = field("OBJ-ACK ") {
        let n = n.unwrap();
        assert_eq!(n, s.acked + 1, "writer {w}: acknowledgements out of order");
        s.acked = n;
    } else if field("OBJ-OPEN ").is_some() {
        s.opened += 1;
    } else if field("OBJ-CLOSED ").is_some() {
        s.closed += 1;
    } else if field("OBJ-DONE ").is_some() {
        s.done = true;
    }
}

/// Ends a child (killed or finished) and records what it printed; a child that failed by
/// itself fails the test.
fn reap(r: Running, killed: bool, seen: &mut BTreeMap<u64, Seen>) {
    let mut r = r;
    if killed {
        let _ = r.child.kill(); // SIGKILL
    }
    let status = r.child.wait().unwrap();
    let stderr = r.stderr.join().unwrap();
    // The reader thread ends with the pipe; everything it read is in the channel.
    while let Ok(line) = r.lines.recv_timeout(Duration::from_secs(5)) {
        absorb(seen, r.w, &line);
    }
    let s = seen.entry(r.w).or_default();
    s.killed = killed;
    if !killed || status.code().is_some() {
        assert!(
            status.success(),
            "writer {} failed by itself ({status}):\n{stderr}",
            r.w
        );
        assert!(s.done, "writer {} exited without finishing:\n{stderr}", r.w);
    }
}

fn run(name: &str, durability: &str) {
    let seed =
        support::seeds_from_env("OBJ_MP_SEED", &[1])[0] ^ support::crc32(0, name.as_bytes()) as u64;
    let secs = support::env_usize("OBJ_MP_SECS", 6) as u64;
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mp.obj");
    // Created up front so that the first writers do not race to create it.
    Db::open(&path, Options::default())
        .unwrap()
        .close()
        .unwrap();

    let start = Instant::now();
    let mut next_w = 1u64;
    let mut live: Vec<Running> = Vec::new();
    let mut seen: BTreeMap<u64, Seen> = BTreeMap::new();
    let mut kills = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        // Keep three writers queued on the lock.
        while live.len() < 3 {
            live.push(spawn(&path, next_w, durability));
            next_w += 1;
        }
        std::thread::sleep(Duration::from_millis(rng.range(5, 120)));
        for r in &live {
            while let Ok(line) = r.lines.try_recv() {
                absorb(&mut seen, r.w, &line);
            }
        }
        // Finished writers leave; sometimes one is killed, at whatever it is doing.
        let mut i = 0;
        while i < live.len() {
            if live[i].child.try_wait().unwrap().is_some() {
                let r = live.remove(i);
                reap(r, false, &mut seen);
            } else {
                i += 1;
            }
        }
        if !live.is_empty() && rng.chance(25) {
            // Whoever it is: starting, waiting for the lock, committing or closing.
            let r = live.remove(rng.below(live.len() as u64) as usize);
            reap(r, true, &mut seen);
            kills += 1;
        }
    }
    // The last writers finish their turns.
    for r in live.drain(..) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut r = r;
        while r.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "writer {} did not finish within a minute",
                r.w
            );
            while let Ok(line) = r.lines.try_recv() {
                absorb(&mut seen, r.w, &line);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        reap(r, false, &mut seen);
    }

    let db = Db::open(&path, Options::default()).unwrap();
    let last = check_whole(&db.begin_read().unwrap(), &format!("{name}: final"));
    let mut acked_total = 0;
    let mut in_flight_kept = 0;
    for (w, s) in &seen {
        let got = last.get(w).copied().unwrap_or(0);
        assert!(
            got >= s.acked,
            "{name}: writer {w} acknowledged commit {} but the database holds {got} ({s:?})",
            s.acked
        );
        assert!(
            got <= s.acked + 1,
            "{name}: writer {w} has commit {got}, beyond its acknowledged {} plus the one in flight",
            s.acked
        );
        if !s.killed {
            assert_eq!(got, s.acked, "{name}: writer {w} finished normally");
        }
        if got > s.acked {
            in_flight_kept += 1;
        }
        acked_total += s.acked;
    }
    db.integrity_check()
        .unwrap_or_else(|e| panic!("{name}: integrity_check: {e}"));
    db.close().unwrap();
    let finished = seen.values().filter(|s| s.done).count();
    let turns: u64 = seen.values().map(|s| s.opened).sum();
    eprintln!(
        "{name}: {} writers ({finished} finished, {kills} killed), {turns} turns at the lock, \
         {acked_total} acknowledged commits, {in_flight_kept} unacknowledged in-flight commits kept, in {:.1?}",
        seen.len(),
        start.elapsed()
    );
    assert!(
        finished >= 2 && kills >= 2 && acked_total >= 20,
        "{name}: too little happened: {finished} finished, {kills} killed, {acked_total} commits"
    );
}

#[test]
fn writers_take_turns_and_killed_ones_lose_nothing_acknowledged() {
    run("immediate", "immediate");
}

/// With `Eventual` durability the OS still has every write a killed process made, so a
/// SIGKILL must not lose acknowledged commits either.
#[test]
fn killed_eventual_writers_lose_nothing_acknowledged() {
    run("eventual", "eventual");
}
