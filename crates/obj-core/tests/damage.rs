//! Damaged files: truncated and bit-flipped WALs and main files, foreign files, and pages
//! rewritten with valid checksums.
//!
//! A database is built with a known sequence of commits, recording the full state after each.
//! Every damaged copy is then opened, read completely and integrity-checked. The answer must
//! be exactly the recorded state the damage leaves intact (for a cut or flipped WAL: every
//! commit wholly before the damage, nothing after it) or an error of the damage kind
//! (`Corruption`, `Integrity`); never a panic, a hang or different data.
//!
//! Env: OBJ_DAMAGE_SEED (default 1), OBJ_DAMAGE_CASES (random cases per kind, default 150).

mod support;

use obj_core::{Db, Durability, Error, Options, Reader};
use std::sync::mpsc;
use std::time::Duration;
use support::wal_layout::{
    self, FRAME_HEADER, F_CHECKSUM, F_COMMIT, F_PADDING, F_PAGE, F_SALT1, F_SALT2,
};
use support::{describe, diff, dump, Rng, SharedMem, State};

/// A database as bytes plus the history that produced it.
#[derive(Clone)]
struct Scenario {
    name: &'static str,
    page_size: usize,
    main: Vec<u8>,
    wal: Vec<u8>,
    /// `states[i]`: the database after commit `i` (`states[0]`: freshly created).
    states: Vec<State>,
    /// The commit the main file holds without the WAL (the last checkpoint).
    base: usize,
    /// `ends[j]`: WAL length once commit `base + j + 1` was appended.
    ends: Vec<u64>,
}

impl Scenario {
    fn last(&self) -> usize {
        self.states.len() - 1
    }

    /// The commit recovery must reach when the WAL's bytes from `offset` on are damaged or
    /// missing: every commit that ends at or before `offset`.
    fn commits_before(&self, offset: u64) -> usize {
        self.base + self.ends.iter().filter(|&&e| e <= offset).count()
    }
}

fn options(page_size: usize, read_only: bool) -> Options {
    Options::default()
        .read_only(read_only)
        .page_size(page_size as u32)
        .durability(Durability::None)
        .checkpoint_frames(u64::MAX)
        // Small, so reads really go to the (damaged) bytes rather than a warm cache.
        .cache_size(0)
}

/// Builds a database with `commits` random commits over three collections; checkpoints after
/// commit `checkpoint_at` (if any). Data stays in the WAL otherwise.
fn build(
    name: &'static str,
    seed: u64,
    page_size: usize,
    commits: usize,
    checkpoint_at: Option<usize>,
) -> Scenario {
    build_with(
        Durability::None,
        name,
        seed,
        page_size,
        commits,
        checkpoint_at,
    )
}

/// [`build`], committing with `durability`.
fn build_with(
    durability: Durability,
    name: &'static str,
    seed: u64,
    page_size: usize,
    commits: usize,
    checkpoint_at: Option<usize>,
) -> Scenario {
    let mut rng = Rng::new(seed ^ support::crc32(0, name.as_bytes()) as u64);
    let main = SharedMem::new();
    let wal = SharedMem::new();
    let db = Db::open_with_backends(
        Box::new(main.clone()),
        Box::new(wal.clone()),
        options(page_size, false).durability(durability),
    )
    .unwrap();
    let mut model = State::new();
    let mut states = vec![model.clone()];
    let mut ends = Vec::new();
    let mut base = 0;
    let colls = ["a", "bb", "ccc"];
    for c in 1..=commits {
        let mut tx = db.begin_write().unwrap();
        // Collections appear one by one so early states differ in their collection lists.
        let avail = &colls[..(c / 2 + 1).min(colls.len())];
        for _ in 0..rng.range(1, 8) {
            let coll = *rng.pick(avail);
            let docs = model.entry(coll.to_string()).or_default();
            let len = match rng.below(10) {
                0 => 0,
                1..=5 => rng.range(1, 200),
                6 | 7 => rng.range(200, 1500),
                _ => rng.range(1500, 3 * page_size as u64),
            } as usize;
            let v = rng.bytes(len);
            match rng.below(4) {
                0 if !docs.is_empty() => {
                    let id = *docs
                        .keys()
                        .nth(rng.below(docs.len() as u64) as usize)
                        .unwrap();
                    assert!(tx.delete(coll, id).unwrap());
                    docs.remove(&id);
                }
                1 if !docs.is_empty() => {
                    let id = *docs
                        .keys()
                        .nth(rng.below(docs.len() as u64) as usize)
                        .unwrap();
                    assert!(tx.put(coll, id, &v).unwrap());
                    docs.insert(id, v);
                }
                _ => {
                    let id = tx.insert(coll, &v).unwrap();
                    docs.insert(id, v);
                }
            }
        }
        tx.commit().unwrap();
        states.push(model.clone());
        if Some(c) == checkpoint_at {
            let info = db.checkpoint().unwrap();
            assert!(info.wal_reset);
            base = c;
            ends.clear();
        } else {
            ends.push(obj_core::backend::StorageBackend::len(&wal).unwrap());
        }
        // The recorded state is what the engine holds.
        let got = dump(&db.begin_read().unwrap()).unwrap().unwrap();
        assert!(
            got == model,
            "{name}: build diverged: {}",
            diff(&model, &got)
        );
    }
    db.close_without_checkpoint().unwrap();
    drop(db);
    Scenario {
        name,
        page_size,
        main: main.contents(),
        wal: wal.contents(),
        states,
        base,
        ends,
    }
}

/// What opening a (damaged) database gave.
#[derive(Debug)]
enum Answer {
    /// Everything read and integrity_check passed.
    Clean(State),
    /// Everything read, but integrity_check reported damage.
    ReadThenRejected(State, Error),
    /// Open or a read failed.
    Rejected(Error),
    /// The engine contradicted itself (ids out of order, count != documents); with what
    /// integrity_check said afterwards.
    Wrong(String, Result<(), Error>),
}

/// Opens over copies of the bytes and reads everything. With `write_after`, a successfully
/// read read-write database also takes one more commit and is reopened to check it.
fn evaluate(main: Vec<u8>, wal: Vec<u8>, page_size: usize, read_only: bool) -> Answer {
    let (m, w) = (
        SharedMem::with_contents(main),
        SharedMem::with_contents(wal),
    );
    let db = match Db::open_with_backends(
        Box::new(m.clone()),
        Box::new(w.clone()),
        options(page_size, read_only),
    ) {
        Ok(db) => db,
        Err(e) => return Answer::Rejected(e),
    };
    let rx = match db.begin_read() {
        Ok(rx) => rx,
        Err(e) => return Answer::Rejected(e),
    };
    let state = match dump(&rx) {
        Err(wrong) => return Answer::Wrong(wrong, db.integrity_check().map(|_| ())),
        Ok(Err(e)) => return Answer::Rejected(e),
        Ok(Ok(s)) => s,
    };
    drop(rx);
    match db.integrity_check() {
        Ok(_) => Answer::Clean(state),
        Err(e) => Answer::ReadThenRejected(state, e),
    }
}

/// Runs `f` on a helper thread: a panic or a hang (30 s) becomes a test failure naming `case`.
fn guarded<T: Send + 'static>(case: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("HANG: {case} did not finish within 30 s")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let payload = handle.join().unwrap_err();
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            // The message names the case already when it comes from a check of this file.
            if msg.contains(case) {
                panic!("{msg}")
            }
            panic!("PANIC (not an error) while running {case}: {msg}")
        }
    }
}

fn damage_error(e: &Error) -> bool {
    matches!(e, Error::Corruption(_) | Error::Integrity(_))
}

/// Checks an answer: exactly `states[want]`, or (if `may_fail`) a damage error.
fn expect(sc: &Scenario, case: &str, answer: &Answer, want: usize, may_fail: bool) {
    let expected = &sc.states[want];
    let which = |s: &State| {
        sc.states
            .iter()
            .position(|x| x == s)
            .map_or("no recorded state".to_string(), |i| format!("state {i}"))
    };
    match answer {
        Answer::Clean(s) if s == expected => {}
        Answer::Clean(s) => panic!(
            "{}: {case}: expected state {want} {}, got {} {} ({})",
            sc.name,
            describe(expected),
            which(s),
            describe(s),
            diff(expected, s)
        ),
        Answer::ReadThenRejected(s, e) => {
            assert!(
                may_fail && damage_error(e),
                "{}: {case}: read state {} then integrity_check failed with {e:?}",
                sc.name,
                which(s)
            );
            assert!(
                s == expected,
                "{}: {case}: reads returned {} (want state {want}) without an error; \
                 integrity_check then said {e}",
                sc.name,
                which(s)
            );
        }
        Answer::Rejected(e) => assert!(
            may_fail && damage_error(e),
            "{}: {case}: expected state {want}, got error {e:?}",
            sc.name
        ),
        Answer::Wrong(w, integrity) => {
            panic!("{}: {case}: {w} (integrity_check: {integrity:?})", sc.name)
        }
    }
}

/// After a successful read-write recovery the database must keep working: one more commit,
/// reopen, and the state is the recovered one plus that commit.
fn continue_after_recovery(sc: &Scenario, case: &str, wal: Vec<u8>, want: usize) {
    let sc2 = sc.clone();
    let case2 = case.to_string();
    guarded(case, move || {
        let (m, w) = (
            SharedMem::with_contents(sc2.main.clone()),
            SharedMem::with_contents(wal),
        );
        let open = || {
            Db::open_with_backends(
                Box::new(m.clone()),
                Box::new(w.clone()),
                options(sc2.page_size, false),
            )
            .unwrap_or_else(|e| panic!("{case2}: reopen: {e:?}"))
        };
        let db = open();
        let mut tx = db.begin_write().unwrap();
        tx.insert("after-recovery", b"new commit").unwrap();
        tx.commit().unwrap();
        db.close_without_checkpoint().unwrap();
        drop(db);
        let mut expected = sc2.states[want].clone();
        expected
            .entry("after-recovery".into())
            .or_default()
            .insert(1, b"new commit".to_vec());
        for round in 0..2 {
            let db = open();
            let got = dump(&db.begin_read().unwrap())
                .unwrap()
                .unwrap_or_else(|e| panic!("{case2}: read after recovery + commit: {e:?}"));
            assert!(
                got == expected,
                "{}: {case2}: after recovery + one commit (reopen {round}): {}",
                sc2.name,
                diff(&expected, &got)
            );
            db.integrity_check()
                .unwrap_or_else(|e| panic!("{case2}: integrity after recovery + commit: {e}"));
            // Second round: after a checkpoint moved everything into the main file.
            db.close().unwrap();
        }
    });
}

fn cases() -> usize {
    support::env_usize("OBJ_DAMAGE_CASES", 150)
}

fn seed() -> u64 {
    support::seeds_from_env("OBJ_DAMAGE_SEED", &[1])[0]
}

fn scenarios() -> Vec<Scenario> {
    let s = seed();
    vec![
        build("wal_only", s, 4096, 14, None),
        build("checkpoint_then_wal", s, 4096, 16, Some(9)),
    ]
}

/// (a) The WAL cut at every frame boundary, next to each, and at random offsets: recovery
/// must give exactly the commits wholly before the cut. Never an error: a torn tail is what
/// every crash leaves.
#[test]
fn truncated_wal_recovers_the_longest_complete_prefix() {
    let mut rng = Rng::new(seed() ^ 0xA);
    for sc in scenarios() {
        let fs = wal_layout::frame_size(sc.page_size) as u64;
        let len = sc.wal.len() as u64;
        let mut cuts: Vec<u64> = vec![0, 1, 32, 63, 64, 65];
        let mut b = wal_layout::HEADER as u64;
        while b <= len {
            cuts.extend([b - 1, b, b + 1, b + FRAME_HEADER as u64, b + fs / 2]);
            b += fs;
        }
        for _ in 0..cases() {
            cuts.push(rng.below(len + 1));
        }
        cuts.retain(|&c| c <= len);
        cuts.sort_unstable();
        cuts.dedup();
        let mut reached = std::collections::BTreeSet::new();
        for (i, &cut) in cuts.iter().enumerate() {
            let want = sc.commits_before(cut);
            reached.insert(want);
            let read_only = i % 2 == 0;
            let case = format!("WAL cut at {cut} of {len} (read_only {read_only})");
            let (main, wal, ps) = (
                sc.main.clone(),
                sc.wal[..cut as usize].to_vec(),
                sc.page_size,
            );
            let answer = guarded(&case, move || evaluate(main, wal, ps, read_only));
            expect(&sc, &case, &answer, want, false);
            if !read_only && i % 6 == 1 {
                continue_after_recovery(&sc, &case, sc.wal[..cut as usize].to_vec(), want);
            }
        }
        // Every recorded state from the checkpoint on was reached by some cut.
        assert_eq!(
            reached.len(),
            sc.last() - sc.base + 1,
            "{}: not every commit boundary was tested",
            sc.name
        );
    }
}

/// Junk after the last commit (a torn or stale tail) is ignored.
#[test]
fn garbage_after_the_wal_is_ignored() {
    let mut rng = Rng::new(seed() ^ 0xB);
    for sc in scenarios() {
        let fs = wal_layout::frame_size(sc.page_size);
        for i in 0..cases() / 3 {
            let mut wal = sc.wal.clone();
            let what = match i % 4 {
                0 => {
                    let n = rng.range(1, 3 * fs as u64) as usize;
                    wal.extend(rng.bytes(n));
                    format!("{n} random bytes")
                }
                1 => {
                    // Zeros, as a file system leaves after a crash during extension.
                    let n = rng.range(1, 2 * fs as u64) as usize;
                    wal.extend(std::iter::repeat_n(0u8, n));
                    format!("{n} zero bytes")
                }
                _ => {
                    // A copy of earlier frames: right salts, wrong place in the checksum chain.
                    let frames = (sc.wal.len() - wal_layout::HEADER) / fs;
                    if frames == 0 {
                        continue;
                    }
                    let f = rng.below(frames as u64) as usize;
                    let n = rng.range(1, (frames - f) as u64) as usize;
                    let from = wal_layout::HEADER + f * fs;
                    wal.extend_from_slice(&sc.wal[from..from + n * fs]);
                    format!("a copy of frames {f}..{}", f + n)
                }
            };
            let read_only = i % 2 == 0;
            let case = format!("WAL + {what} (read_only {read_only})");
            let (main, ps, w2) = (sc.main.clone(), sc.page_size, wal.clone());
            let answer = guarded(&case, move || evaluate(main, w2, ps, read_only));
            expect(&sc, &case, &answer, sc.last(), false);
            if !read_only && i % 4 == 1 {
                continue_after_recovery(&sc, &case, wal, sc.last());
            }
        }
    }
}

/// Flips 1-3 random bits of the WAL (biased towards the header and frame headers) and
/// returns the damaged log, the flipped offsets and the commit recovery must stop at.
fn flip_wal(rng: &mut Rng, sc: &Scenario) -> (Vec<u8>, Vec<u64>, usize) {
    let fs = wal_layout::frame_size(sc.page_size) as u64;
    let len = sc.wal.len() as u64;
    let mut wal = sc.wal.clone();
    let mut first = len;
    let mut at = Vec::new();
    for _ in 0..rng.range(1, 3) {
        let pos = match rng.below(10) {
            // The header.
            0 => rng.below(wal_layout::HEADER as u64),
            // Frame headers: page number, commit marker, salts, checksum, padding.
            1..=3 => {
                let f = rng.below((len - wal_layout::HEADER as u64) / fs);
                let field =
                    *rng.pick(&[F_PAGE, F_COMMIT, F_SALT1, F_SALT2, F_CHECKSUM, F_PADDING]) as u64;
                wal_layout::HEADER as u64 + f * fs + field + rng.below(4)
            }
            _ => rng.below(len),
        };
        wal[pos as usize] ^= 1 << rng.below(8);
        at.push(pos);
        // Bytes 28..32 of a frame header are the durability mark (not covered by the
        // checksum): flipping them damages no commit, it only loses a proof of damage.
        let in_padding = pos >= wal_layout::HEADER as u64
            && (F_PADDING..FRAME_HEADER)
                .contains(&(((pos - wal_layout::HEADER as u64) % fs) as usize));
        if !in_padding {
            first = first.min(pos);
        }
    }
    // The commit holding the first damaged byte, and all after it, are gone.
    let want = sc.commits_before(first);
    (wal, at, want)
}

/// (b) Random bit flips in the WAL: recovery stops before the first damaged commit (or the
/// open fails with Corruption); no damaged or later commit is ever applied.
#[test]
fn bit_flips_in_the_wal() {
    let mut rng = Rng::new(seed() ^ 0xC);
    for sc in scenarios() {
        if sc.ends.is_empty() {
            continue;
        }
        let mut errors = 0;
        for i in 0..cases() {
            let (wal, at, want) = flip_wal(&mut rng, &sc);
            let read_only = i % 2 == 0;
            let case = format!("WAL bits flipped at {at:?} (read_only {read_only})");
            let (main, ps) = (sc.main.clone(), sc.page_size);
            let answer = guarded(&case, move || evaluate(main, wal, ps, read_only));
            if matches!(answer, Answer::Rejected(_)) {
                errors += 1;
            }
            expect(&sc, &case, &answer, want, true);
        }
        eprintln!("{}: {} WAL flip cases, {errors} refused", sc.name, cases());
    }
}

/// A log of `commits` random commits written with `Immediate` durability: every commit after
/// the first starts behind a synced log, so its first frame carries a durability mark.
fn immediate_scenario(commits: usize) -> Scenario {
    build_with(
        Durability::Immediate,
        "immediate",
        seed(),
        4096,
        commits,
        None,
    )
}

/// Frame index of each commit's last frame.
fn last_frames(sc: &Scenario) -> Vec<usize> {
    let fs = wal_layout::frame_size(sc.page_size);
    sc.ends
        .iter()
        .map(|&e| (e as usize - wal_layout::HEADER) / fs - 1)
        .collect()
}

/// The commit (1-based, counted in the log) that holds frame `frame`.
fn commit_of(sc: &Scenario, frame: usize) -> usize {
    last_frames(sc).iter().filter(|&&l| l < frame).count() + 1
}

/// Opens read-write over `wal` and returns the error, the log's bytes afterwards and the
/// recovered state when it opened.
fn open_rw(sc: &Scenario, wal: Vec<u8>) -> (Result<State, Error>, Vec<u8>) {
    let (m, w) = (
        SharedMem::with_contents(sc.main.clone()),
        SharedMem::with_contents(wal),
    );
    let opened = Db::open_with_backends(
        Box::new(m.clone()),
        Box::new(w.clone()),
        options(sc.page_size, false),
    )
    .map(|db| {
        let state = dump(&db.begin_read().unwrap()).unwrap().unwrap();
        // No checkpoint on the way out: the log stays as the open left it.
        db.close_without_checkpoint().unwrap();
        state
    });
    (opened, w.contents())
}

/// (c) Damage in the middle of a log of synced commits is not a torn tail: a read-write open
/// fails with Corruption that counts the commits behind the damage, and leaves the log
/// byte for byte as it was; a read-only open reads the state before the damaged commit.
#[test]
fn damage_before_later_synced_commits_is_corruption_and_the_log_is_kept() {
    let sc = immediate_scenario(8);
    let fs = wal_layout::frame_size(sc.page_size);
    let total = (sc.wal.len() - wal_layout::HEADER) / fs;
    let ends = last_frames(&sc);
    assert_eq!(ends.last(), Some(&(total - 1)));
    let mut checked = 0;
    for c in 0..ends.len() - 1 {
        let first = if c == 0 { 0 } else { ends[c - 1] + 1 };
        let last = ends[c];
        let middle = (first + last) / 2;
        let places = [
            (first, FRAME_HEADER + 100, "page body"),
            (middle, FRAME_HEADER + 2000, "page body"),
            (last, fs - 2, "page trailer"),
            (middle, F_PAGE, "page number"),
            (first, F_COMMIT + 1, "commit marker"),
            (last, F_COMMIT, "commit marker"),
            (middle, F_SALT1 + 2, "salt 1"),
            (first, F_SALT2, "salt 2"),
            (first, F_CHECKSUM, "stored checksum"),
            (last, F_CHECKSUM + 3, "stored checksum"),
        ];
        for (frame, field, what) in places {
            let pos = wal_layout::HEADER + frame * fs + field;
            let mut wal = sc.wal.clone();
            wal[pos] ^= 0x04;
            let case = format!("{what} of frame {frame} (commit {}) flipped", c + 1);
            let (opened, after) = open_rw(&sc, wal.clone());
            let lost_frames = total - frame - 1;
            let lost_commits = ends.iter().filter(|&&l| l > frame).count();
            match opened {
                Err(Error::Corruption(m)) => {
                    let counts =
                        format!("{lost_frames} later frames holding {lost_commits} commits");
                    for needle in [&counts[..], "read_only=True", "backup", "not torn"] {
                        assert!(m.contains(needle), "{case}: {m:?} lacks {needle:?}");
                    }
                }
                other => panic!("{case}: expected Corruption, got {other:?}"),
            }
            assert!(
                after == wal,
                "{case}: a refused read-write open changed the log"
            );
            let (main, ps) = (sc.main.clone(), sc.page_size);
            let answer = guarded(&case, move || evaluate(main, wal, ps, true));
            expect(&sc, &format!("{case}, read-only"), &answer, c, false);
            checked += 1;
        }
    }
    assert!(checked >= 60);
}

/// (c) A torn last commit (cut, torn sectors, flipped bits: anything that damages only the
/// last commit) is what a crash leaves: silently dropped, and cut by a read-write open.
#[test]
fn a_torn_last_commit_stays_silent_and_is_cut() {
    let sc = immediate_scenario(6);
    let fs = wal_layout::frame_size(sc.page_size);
    let ends = last_frames(&sc);
    let (first, last) = (ends[ends.len() - 2] + 1, ends[ends.len() - 1]);
    assert!(last > first, "the last commit needs several frames");
    let keep = sc.ends[sc.ends.len() - 2] as usize;
    let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [
        keep + 1,
        keep + fs / 2,
        keep + fs,
        keep + fs + 7,
        sc.wal.len() - 1,
    ] {
        damaged.push((format!("cut at {cut}"), sc.wal[..cut].to_vec()));
    }
    for frame in first..=last {
        for field in [F_PAGE, F_CHECKSUM, FRAME_HEADER + 5, fs - 1] {
            let mut wal = sc.wal.clone();
            wal[wal_layout::HEADER + frame * fs + field] ^= 0x80;
            damaged.push((format!("frame {frame} byte {field} flipped"), wal));
        }
    }
    // A sector of the first frame never reached the disk (it holds older bytes), the later
    // frames of the same commit did: a crash reorders unsynced writes.
    let mut wal = sc.wal.clone();
    let at = wal_layout::HEADER + first * fs + 1024;
    wal[at..at + 512].iter_mut().for_each(|b| *b ^= 0x5a);
    damaged.push(("a lost sector in the first frame".into(), wal));
    for (case, wal) in damaged {
        let (opened, after) = open_rw(&sc, wal);
        match opened {
            Ok(state) => assert!(
                state == sc.states[sc.last() - 1],
                "{case}: recovered {}",
                describe(&state)
            ),
            Err(e) => panic!("{case}: a torn last commit must open, got {e:?}"),
        }
        assert_eq!(after.len(), keep, "{case}: the torn tail was not cut");
    }
}

/// Copies of earlier frames behind the log verify pairwise (each chains from the copy before
/// it), but their durability marks name another place in the log: a stale tail, ignored.
#[test]
fn copied_frames_behind_the_log_are_not_taken_for_later_commits() {
    let sc = immediate_scenario(6);
    let fs = wal_layout::frame_size(sc.page_size);
    let frames = (sc.wal.len() - wal_layout::HEADER) / fs;
    for from in 0..frames - 1 {
        let mut wal = sc.wal.clone();
        let at = wal_layout::HEADER + from * fs;
        wal.extend_from_slice(&sc.wal[at..]);
        let case = format!("frames {from}.. appended again");
        let (opened, after) = open_rw(&sc, wal);
        match opened {
            Ok(state) => assert!(state == sc.states[sc.last()], "{case}"),
            Err(e) => panic!("{case}: {e:?}"),
        }
        assert!(after == sc.wal, "{case}: the stale copy was not cut");
    }
}

/// One random bit flipped anywhere in the frames of a log of synced commits: in any commit
/// but the last, a read-write open fails with Corruption and a read-only one reads the
/// commits before it; in the last commit, the commit is dropped silently.
#[test]
fn random_bit_flips_in_a_log_of_synced_commits() {
    let mut rng = Rng::new(seed() ^ 0x12);
    let sc = immediate_scenario(10);
    let fs = wal_layout::frame_size(sc.page_size) as u64;
    let len = sc.wal.len() as u64;
    let last_commit = sc.ends.len();
    for i in 0..cases() {
        let pos = wal_layout::HEADER as u64 + rng.below(len - wal_layout::HEADER as u64);
        let mut wal = sc.wal.clone();
        wal[pos as usize] ^= 1 << rng.below(8);
        let frame = ((pos - wal_layout::HEADER as u64) / fs) as usize;
        let in_mark = ((pos - wal_layout::HEADER as u64) % fs) as usize >= F_PADDING
            && (((pos - wal_layout::HEADER as u64) % fs) as usize) < FRAME_HEADER;
        let commit = commit_of(&sc, frame);
        let read_only = i % 2 == 0;
        let case =
            format!("bit flipped at {pos} (frame {frame}, commit {commit}, read_only {read_only})");
        let (main, ps, w2) = (sc.main.clone(), sc.page_size, wal.clone());
        let answer = guarded(&case, move || evaluate(main, w2, ps, read_only));
        if in_mark {
            expect(&sc, &case, &answer, sc.last(), false);
        } else if commit == last_commit || read_only {
            expect(&sc, &case, &answer, commit - 1, false);
        } else {
            assert!(
                matches!(answer, Answer::Rejected(Error::Corruption(_))),
                "{case}: expected Corruption, got {answer:?}"
            );
        }
    }
}

/// A log written with `Eventual` durability is synced only by checkpoints and opens, so only
/// damage in front of a commit written after such a sync is known not to be a torn write;
/// damage among commits no sync covered is what a power loss may leave, and stays silent.
#[test]
fn eventual_durability_proves_damage_only_before_a_sync() {
    let (main, wal) = (SharedMem::new(), SharedMem::new());
    let opts = options(4096, false).durability(Durability::Eventual);
    let mut ends = Vec::new();
    for round in 0..2u8 {
        let db =
            Db::open_with_backends(Box::new(main.clone()), Box::new(wal.clone()), opts.clone())
                .unwrap();
        for i in 0..3u8 {
            let mut tx = db.begin_write().unwrap();
            tx.insert("c", &[round, i]).unwrap();
            tx.commit().unwrap();
            ends.push(obj_core::backend::StorageBackend::len(&wal).unwrap() as usize);
        }
        // No checkpoint: the reopen syncs the log, the next commit is written behind that.
        db.close_without_checkpoint().unwrap();
    }
    let bytes = wal.contents();
    let open = |wal: Vec<u8>| {
        Db::open_with_backends(
            Box::new(SharedMem::with_contents(main.contents())),
            Box::new(SharedMem::with_contents(wal)),
            opts.clone(),
        )
        .map(|db| db.begin_read().unwrap().count("c").unwrap())
    };
    assert_eq!(open(bytes.clone()).unwrap(), 6);
    // Commit 2 was synced by the reopen before commit 4 was written.
    let mut flipped = bytes.clone();
    flipped[ends[0] + FRAME_HEADER + 9] ^= 1;
    assert!(matches!(open(flipped), Err(Error::Corruption(m)) if m.contains("holding 5 commits")));
    // Commit 5: only commit 6 follows, and no sync came between them.
    let mut flipped = bytes.clone();
    flipped[ends[3] + FRAME_HEADER + 9] ^= 1;
    assert_eq!(open(flipped).unwrap(), 4);
}

/// Damage in front of commits a checkpoint already copied into the main file (a reader held
/// it back, so the log stayed): no open may read the older commits from the log over the
/// main file's newer pages.
#[test]
fn damage_behind_a_partial_checkpoint_never_mixes_states() {
    let (main, wal) = (SharedMem::new(), SharedMem::new());
    let opts = options(4096, false).durability(Durability::Immediate);
    let db = Db::open_with_backends(Box::new(main.clone()), Box::new(wal.clone()), opts).unwrap();
    let mut ends = Vec::new();
    let mut reader = None;
    for i in 0..5u8 {
        let mut tx = db.begin_write().unwrap();
        tx.insert("c", &[i; 100]).unwrap();
        tx.commit().unwrap();
        ends.push(obj_core::backend::StorageBackend::len(&wal).unwrap() as usize);
        match i {
            1 => reader = Some(db.begin_read().unwrap()),
            2 => assert!(db.checkpoint().unwrap().deferred),
            _ => {}
        }
    }
    drop(reader);
    db.close_without_checkpoint().unwrap();
    drop(db);
    // Commits 1 and 2 are in the main file now, and still in the log.
    for (commit, at) in [
        (1, wal_layout::HEADER),
        (2, ends[0]),
        (4, ends[2]),
        (5, ends[3]),
    ] {
        let mut bytes = wal.contents();
        bytes[at + FRAME_HEADER + 50] ^= 0x20;
        for read_only in [false, true] {
            let case = format!("commit {commit} damaged (read_only {read_only})");
            let (m, w) = (main.contents(), bytes.clone());
            let answer = guarded(&case, move || evaluate(m, w, 4096, read_only));
            let docs = |s: &State| s.get("c").map_or(0, |d| d.len());
            let refused = matches!(answer, Answer::Rejected(Error::Corruption(_)));
            match (&answer, commit, read_only) {
                // Commit 1 from the log, the rest from a main file at commit 2: refused.
                (_, 2, _) if refused => {}
                // Later commits prove the damage: a read-write open is refused.
                (_, 1 | 4, false) if refused => {}
                // Read-only, nothing of the log is read: the main file's own state.
                (Answer::Clean(s), 1, true) => assert_eq!(docs(s), 2, "{case}"),
                (Answer::Clean(s), 4, true) => assert_eq!(docs(s), 3, "{case}"),
                // The last commit: a torn tail.
                (Answer::Clean(s), 5, _) => assert_eq!(docs(s), 4, "{case}"),
                _ => panic!("{case}: {answer:?}"),
            }
        }
    }
}

/// After recovering from a damaged WAL, new commits must survive reopening, and the frames
/// that recovery dropped must stay dropped.
#[test]
fn new_commits_after_recovering_from_wal_damage() {
    let mut rng = Rng::new(seed() ^ 0x11);
    let mut failures = Vec::new();
    for sc in scenarios() {
        if sc.ends.is_empty() {
            continue;
        }
        for _ in 0..cases() / 3 {
            let (wal, at, want) = flip_wal(&mut rng, &sc);
            let case = format!("WAL bits flipped at {at:?}");
            let (main, ps, w2) = (sc.main.clone(), sc.page_size, wal.clone());
            let answer = guarded(&case, move || evaluate(main, w2, ps, false));
            if !matches!(answer, Answer::Clean(_)) {
                continue;
            }
            let sc2 = sc.clone();
            let c2 = case.clone();
            let r =
                std::thread::spawn(move || continue_after_recovery(&sc2, &c2, wal, want)).join();
            if let Err(p) = r {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "panic".into());
                failures.push(msg);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases lost the new commit or resurrected dropped frames; first: {}",
        failures.len(),
        failures[0]
    );
}

/// Minimal reproduction: recovery stops at a damaged frame of commit 1, so commits 1 and 2
/// are dropped. A new commit with the same shape (pages 0, 1, 2) then overwrites commit 1's
/// frames. On the next open the stale frames of the old commit 2 must not be replayed.
#[test]
fn stale_wal_frames_are_not_resurrected_after_recovery() {
    let (main, wal) = (SharedMem::new(), SharedMem::new());
    let open = |m: &SharedMem, w: &SharedMem| {
        Db::open_with_backends(
            Box::new(m.clone()),
            Box::new(w.clone()),
            options(4096, false),
        )
        .unwrap()
    };
    let db = open(&main, &wal);
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"old commit 1").unwrap(); // pages 0 (header), 1 (catalog), 2 (root)
    tx.commit().unwrap();
    let end1 = obj_core::backend::StorageBackend::len(&wal).unwrap() as usize;
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"old commit 2").unwrap();
    tx.insert("other", b"old commit 2").unwrap();
    tx.commit().unwrap();
    db.close_without_checkpoint().unwrap();
    drop(db);
    // Damage one byte in the page image of commit 1's last frame.
    let mut bytes = wal.contents();
    bytes[end1 - 100] ^= 0x01;
    let wal = SharedMem::with_contents(bytes);
    let db = open(&main, &wal);
    let rx = db.begin_read().unwrap();
    assert_eq!(
        dump(&rx).unwrap().unwrap(),
        State::new(),
        "recovery must stop before the damaged commit 1"
    );
    drop(rx);
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"new commit").unwrap();
    tx.commit().unwrap();
    db.close_without_checkpoint().unwrap();
    drop(db);
    let db = open(&main, &wal);
    let got = dump(&db.begin_read().unwrap()).unwrap().unwrap();
    let mut want = State::new();
    want.entry("c".into())
        .or_default()
        .insert(1, b"new commit".to_vec());
    assert!(
        got == want,
        "after reopening, the database holds {} instead of only the new commit ({}); \
         WAL frames recovered: {}",
        describe(&got),
        diff(&want, &got),
        db.wal_frames()
    );
}

/// (b) Random bit flips in the main file, with data both only in the main file and in main
/// file + WAL: the full final state or a damage error.
#[test]
fn bit_flips_in_the_main_file() {
    let mut rng = Rng::new(seed() ^ 0xD);
    let s = seed();
    let mut all = scenarios();
    all.push(build("all_in_main", s, 4096, 12, Some(12)));
    all.push(build("all_in_main_8k", s, 8192, 10, Some(10)));
    for sc in all {
        let len = sc.main.len() as u64;
        let ps = sc.page_size as u64;
        let mut errors = 0;
        for i in 0..cases() {
            let mut main = sc.main.clone();
            let flips = rng.range(1, 3);
            let mut at = Vec::new();
            for _ in 0..flips {
                let pos = match rng.below(10) {
                    0 => rng.below(128),                                   // header fields
                    1 => rng.below(len / ps) * ps + rng.below(16),         // page headers
                    2 => rng.below(len / ps) * ps + ps - 1 - rng.below(4), // checksums
                    _ => rng.below(len),
                };
                main[pos as usize] ^= 1 << rng.below(8);
                at.push(pos);
            }
            let read_only = i % 2 == 1;
            let case = format!("main-file bits flipped at {at:?} (read_only {read_only})");
            let (ps_, wal) = (sc.page_size, sc.wal.clone());
            let answer = guarded(&case, move || evaluate(main, wal, ps_, read_only));
            // A flipped format version or required-feature bit reads as a file from a newer
            // build or an encrypted one (the header is parsed before its checksum is
            // checked); that refusal is acceptable for those header bytes only.
            let header_feature = at
                .iter()
                .any(|&p| (8..12).contains(&p) || (16..24).contains(&p));
            if let Answer::Rejected(e @ (Error::FeatureUnsupported(_) | Error::Encryption(_))) =
                &answer
            {
                assert!(
                    header_feature,
                    "{}: {case}: {e:?} for damage outside the version/feature fields",
                    sc.name
                );
                errors += 1;
                continue;
            }
            if matches!(answer, Answer::Rejected(_)) {
                errors += 1;
            }
            expect(&sc, &case, &answer, sc.last(), true);
        }
        eprintln!(
            "{}: {} main-file flip cases, {errors} refused",
            sc.name,
            cases()
        );
    }
}

/// A main file cut short: the final state (when the cut only removes unused bytes) or
/// Corruption, never a panic.
#[test]
fn truncated_main_file() {
    let mut rng = Rng::new(seed() ^ 0xE);
    let mut all = scenarios();
    all.push(build("all_in_main", seed(), 4096, 12, Some(12)));
    for sc in all {
        let len = sc.main.len() as u64;
        let ps = sc.page_size as u64;
        let mut cuts: Vec<u64> = (0..len / ps).map(|p| p * ps).collect();
        cuts.extend([1, 8, 70, 100, 4095]);
        for _ in 0..cases() / 4 {
            cuts.push(rng.below(len));
        }
        for (i, &cut) in cuts.iter().enumerate() {
            let read_only = i % 2 == 0;
            let case = format!("main file cut at {cut} of {len} (read_only {read_only})");
            let (main, wal, ps_) = (
                sc.main[..cut as usize].to_vec(),
                sc.wal.clone(),
                sc.page_size,
            );
            let answer = guarded(&case, move || evaluate(main, wal, ps_, read_only));
            expect(&sc, &case, &answer, sc.last(), true);
        }
    }
}

/// Files that are not obj databases are refused with Corruption.
#[test]
fn foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(seed() ^ 0xF);
    let ro = Options::default()
        .read_only(true)
        .busy_timeout(Duration::from_millis(100));
    let rw = Options::default().busy_timeout(Duration::from_millis(100));
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (
            "text".into(),
            b"Hello, this is a plain text file.\nNot a database.\n".repeat(200),
        ),
        ("one byte".into(), vec![0x89]),
        ("4 KiB of zeros".into(), vec![0; 4096]),
        ("8 KiB of 0xff".into(), vec![0xff; 8192]),
        ("sqlite header".into(), {
            let mut v = b"SQLite format 3\0".to_vec();
            v.resize(8192, 0);
            v
        }),
        // Right magic, nothing else.
        ("magic only".into(), b"\x89OBJdb\r\n".to_vec()),
        ("magic then junk".into(), {
            let mut v = b"\x89OBJdb\r\n".to_vec();
            v.extend(rng.bytes(8192));
            v
        }),
    ];
    for n in [1usize, 63, 64, 100, 4096, 10_000, 70_000] {
        files.push((format!("{n} random bytes"), rng.bytes(n)));
    }
    for (i, (what, bytes)) in files.iter().enumerate() {
        for (mode, opts) in [("read-only", &ro), ("read-write", &rw)] {
            let path = dir.path().join(format!("foreign{i}-{mode}.bin"));
            std::fs::write(&path, bytes).unwrap();
            let p2 = path.clone();
            let o2 = opts.clone();
            let case = format!("{what} opened {mode}");
            let r = guarded(&case, move || match Db::open(&p2, o2) {
                Ok(db) => Err(format!(
                    "opened; collections: {:?}",
                    db.begin_read().and_then(|r| r.collections())
                )),
                Err(e) => Ok(e),
            });
            match r {
                Ok(Error::Corruption(_)) => {}
                // The right magic followed by junk reads as a version from a newer build or an
                // encrypted file (the header is parsed before its checksum is checked);
                // acceptable for that file only.
                Ok(Error::FeatureUnsupported(_) | Error::Encryption(_))
                    if what == "magic then junk" => {}
                other => panic!("{case}: expected Err(Corruption), got {other:?}"),
            }
            // Refusing must not have modified the file.
            assert_eq!(
                &std::fs::read(&path).unwrap(),
                bytes,
                "{case}: the refused file was modified"
            );
        }
    }
    // An empty file: read-only is refused, read-write initialises a database.
    let empty = dir.path().join("empty.obj");
    std::fs::write(&empty, b"").unwrap();
    match Db::open(&empty, ro.clone()) {
        Err(Error::Corruption(_)) => {}
        other => panic!("empty file opened read-only: expected Corruption, got {other:?}"),
    }
    let db = Db::open(&empty, rw.clone()).unwrap();
    let mut tx = db.begin_write().unwrap();
    tx.insert("c", b"x").unwrap();
    tx.commit().unwrap();
    db.close().unwrap();
    drop(db);
    let db = Db::open(&empty, ro.clone()).unwrap();
    assert_eq!(db.begin_read().unwrap().count("c").unwrap(), 1);
    // A WAL made for another page size is refused rather than replayed.
    let big = dir.path().join("big.obj");
    let small = dir.path().join("small.obj");
    for (p, size) in [(&big, 8192u32), (&small, 4096)] {
        let db = Db::open(p, rw.clone().page_size(size)).unwrap();
        let mut tx = db.begin_write().unwrap();
        tx.insert("c", b"x").unwrap();
        tx.commit().unwrap();
        db.close_without_checkpoint().unwrap();
    }
    std::fs::copy(obj_core::wal_path(&small), obj_core::wal_path(&big)).unwrap();
    for opts in [&ro, &rw] {
        match Db::open(&big, opts.clone()) {
            Err(Error::Corruption(_)) => {}
            other => panic!("WAL of another page size: expected Corruption, got {other:?}"),
        }
    }
}

/// Pages rewritten with valid checksums (what a buggy writer or a crafted file produces):
/// the checksum layer cannot help, the structural checks must. Whatever happens: no panic,
/// no hang, only damage errors, and when integrity_check passes the reads agree with it.
#[test]
fn resealed_page_damage() {
    let mut rng = Rng::new(seed() ^ 0x10);
    let mut all = scenarios();
    all.push(build("all_in_main", seed(), 4096, 12, Some(12)));
    for sc in all {
        let ps = sc.page_size;
        let main_pages = sc.main.len() / ps;
        let fs = wal_layout::frame_size(ps);
        let wal_frames = sc.wal.len().saturating_sub(wal_layout::HEADER) / fs;
        let mut outcomes = [0usize; 4];
        for i in 0..cases() * 2 {
            let (mut main, mut wal) = (sc.main.clone(), sc.wal.clone());
            let in_wal = wal_frames > 0 && rng.chance(50);
            let (buf, no, at) = if in_wal {
                let f = rng.below(wal_frames as u64) as usize;
                let off = wal_layout::HEADER + f * fs;
                let no = u64::from_le_bytes(wal[off..off + 8].try_into().unwrap());
                (&mut wal, no, off + FRAME_HEADER)
            } else {
                let p = rng.below(main_pages as u64) as usize;
                (&mut main, p as u64, p * ps)
            };
            let page = &mut buf[at..at + ps];
            let what = mutate_page(&mut rng, page, no);
            obj_core::format::seal_page(no, page);
            if in_wal {
                wal_layout::rechain(&mut wal, ps);
            }
            let read_only = i % 2 == 0;
            let case = format!(
                "page {no} in the {} {what}, resealed (read_only {read_only})",
                if in_wal { "WAL" } else { "main file" }
            );
            let answer = guarded(&case, move || evaluate(main, wal, ps, read_only));
            match &answer {
                Answer::Clean(_) => outcomes[0] += 1,
                Answer::ReadThenRejected(_, e) | Answer::Rejected(e) => {
                    // A forged header may claim features or encryption: refusing is fine.
                    assert!(
                        damage_error(e)
                            || matches!(e, Error::FeatureUnsupported(_) | Error::Encryption(_)),
                        "{}: {case}: unexpected error kind {e:?}",
                        sc.name
                    );
                    outcomes[if matches!(answer, Answer::Rejected(_)) {
                        2
                    } else {
                        1
                    }] += 1;
                }
                Answer::Wrong(w, integrity) => {
                    // Reads that contradict each other are acceptable only when
                    // integrity_check reports the damage.
                    assert!(
                        integrity.is_err(),
                        "{}: {case}: {w}, yet integrity_check passed",
                        sc.name
                    );
                    outcomes[3] += 1;
                }
            }
        }
        eprintln!(
            "{}: resealed damage: {} clean, {} read then rejected by integrity_check, {} refused, \
             {} contradictory reads caught by integrity_check",
            sc.name, outcomes[0], outcomes[1], outcomes[2], outcomes[3]
        );
    }
}

/// Changes a page in a way its checksum will not reveal (it is resealed afterwards).
fn mutate_page(rng: &mut Rng, page: &mut [u8], no: u64) -> String {
    let ps = page.len();
    if no == 0 {
        // Header fields: page count, free list head/count, catalog root, commit seq, next
        // collection id, database id, WAL generation.
        let field = 32 + 8 * rng.below(9) as usize;
        let v = match rng.below(5) {
            0 => 0,
            1 => rng.below(64),
            2 => u64::MAX - rng.below(3),
            3 => 1 << rng.range(20, 62),
            _ => {
                u64::from_le_bytes(page[field..field + 8].try_into().unwrap())
                    ^ (1 << rng.below(64))
            }
        };
        page[field..field + 8].copy_from_slice(&v.to_le_bytes());
        return format!("header field at {field} set to {v}");
    }
    match rng.below(6) {
        0 => {
            // Node header: kind, count, content start, rightmost child.
            let at = rng.below(16) as usize;
            page[at] = rng.next_u64() as u8;
            format!("header byte {at} changed")
        }
        1 => {
            // A cell pointer.
            let at = 16 + 2 * rng.below(8) as usize;
            let v = rng.below(ps as u64 + 100) as u16;
            page[at..at + 2].copy_from_slice(&v.to_le_bytes());
            format!("cell pointer at {at} set to {v}")
        }
        2 => {
            // A child pointer / overflow page number / freelist entry: an 8-byte page number.
            let at = rng.below(ps as u64 - 12) as usize;
            let v = match rng.below(3) {
                0 => rng.below(40),
                1 => no,
                _ => rng.next_u64(),
            };
            page[at..at + 8].copy_from_slice(&v.to_le_bytes());
            format!("8 bytes at {at} set to {v}")
        }
        3 => {
            // A length field somewhere.
            let at = rng.below(ps as u64 - 8) as usize;
            let v = *rng.pick(&[0u32, 1, 0xffff, 0xffff_ffff, ps as u32, 7]);
            page[at..at + 4].copy_from_slice(&v.to_le_bytes());
            format!("4 bytes at {at} set to {v}")
        }
        4 => {
            let n = rng.range(1, 16) as usize;
            let at = rng.below((ps - 4 - n) as u64) as usize;
            rng.fill(&mut page[at..at + n]);
            format!("{n} random bytes at {at}")
        }
        _ => {
            let b = rng.next_u64() as u8;
            page[..ps - 4].fill(b);
            format!("filled with {b:#x}")
        }
    }
}

/// Extreme values in the header fields that tie the WAL to the main file (valid checksum):
/// a damage error or a clean open, never an arithmetic-overflow panic.
#[test]
fn extreme_wal_generation_and_db_id_in_a_valid_header() {
    use obj_core::format::{META_DB_ID, META_WAL_GENERATION};
    let base = build("all_in_main", seed(), 4096, 4, Some(4));
    let with_wal = build("checkpoint_then_wal", seed(), 4096, 6, Some(3));
    for sc in [&base, &with_wal] {
        for (field, name) in [
            (META_WAL_GENERATION, "wal_generation"),
            (META_DB_ID, "db_id"),
        ] {
            for v in [u64::MAX, u64::MAX - 1, 0] {
                let mut main = sc.main.clone();
                main[field..field + 8].copy_from_slice(&v.to_le_bytes());
                obj_core::format::seal_page(0, &mut main[..4096]);
                for read_only in [true, false] {
                    let case = format!(
                        "{}: header {name} = {v} (resealed), read_only {read_only}",
                        sc.name
                    );
                    let (m, w) = (main.clone(), sc.wal.clone());
                    let answer = guarded(&case, move || evaluate(m, w, 4096, read_only));
                    match &answer {
                        Answer::Clean(_) => {}
                        Answer::Rejected(e) | Answer::ReadThenRejected(_, e) => {
                            assert!(damage_error(e), "{case}: {e:?}")
                        }
                        Answer::Wrong(w, _) => panic!("{case}: {w}"),
                    }
                }
            }
        }
    }
}

/// Set in the child process of `huge_page_count_in_a_valid_header`.
const HUGE_CHILD_ENV: &str = "OBJ_DAMAGE_HUGE_PAGE_COUNT";

/// A header (checksum valid) claiming far more pages than the file has. Runs in a child
/// process, because an allocation failure aborts the process instead of unwinding. Expected:
/// the open or integrity_check fails with a damage error, promptly.
#[test]
fn huge_page_count_in_a_valid_header() {
    let mut failures = Vec::new();
    for page_count in [1u64 << 40, u64::MAX] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "child_huge_page_count",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HUGE_CHILD_ENV, page_count.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            failures.push(format!("page_count {page_count}: HANG (killed after 60 s)"));
            let _ = child.wait();
            continue;
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains("CHILD-OK") {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            let why = match lines
                .iter()
                .position(|l| l.contains("memory allocation") || l.contains("panicked"))
            {
                Some(i) => lines[i..(i + 2).min(lines.len())].join(" "),
                None => lines.last().copied().unwrap_or_default().to_string(),
            };
            failures.push(format!(
                "page_count {page_count}: child exited with {} ({why})",
                out.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn child_huge_page_count() {
    let Ok(n) = std::env::var(HUGE_CHILD_ENV) else {
        return; // Only meaningful as the child of huge_page_count_in_a_valid_header.
    };
    let page_count: u64 = n.parse().unwrap();
    let sc = build("all_in_main", seed(), 4096, 4, Some(4));
    let mut main = sc.main.clone();
    let at = obj_core::format::META_PAGE_COUNT;
    main[at..at + 8].copy_from_slice(&page_count.to_le_bytes());
    obj_core::format::seal_page(0, &mut main[..4096]);
    for read_only in [true, false] {
        let t = std::time::Instant::now();
        let answer = evaluate(main.clone(), sc.wal.clone(), 4096, read_only);
        match &answer {
            Answer::Rejected(e) | Answer::ReadThenRejected(_, e) if damage_error(e) => {}
            other => panic!("page_count {page_count}: expected a damage error, got {other:?}"),
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "page_count {page_count}: took {:?}",
            t.elapsed()
        );
    }
    println!("CHILD-OK");
}
