//! The database handle: open/create and recovery, transactions, backup, compaction and
//! close, over the engine state in `state.rs`.

use crate::backend::{FileBackend, LaterFile, MemoryBackend, Named, StorageBackend};
use crate::btree::{self, node};
use crate::cipher::PageCipher;
use crate::compact::{self, CompactInfo};
use crate::coord::Coord;
use crate::error::{Error, IoContext, Result};
use crate::format::{self, Meta, PageKind};
use crate::freelist;
use crate::integrity::{self, IntegrityReport};
use crate::lock;
use crate::options::{Locking, OpenMode, Options};
use crate::pager::Pager;
use crate::reader::{ReadTxn, Reader};
use crate::shm::{Lock, Shm};
use crate::stat::Stat;
use crate::state::{CheckpointInfo, Place, ReaderStat, Shared};
use crate::wal::{self, Wal};
use crate::write::WriteTxn;
use obj_sys::LockKind;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open database. `Send + Sync`: share it between threads (for example in an `Arc`).
pub struct Db {
    shared: Arc<Shared>,
}

/// Structural check for pages loaded from disk, by kind.
fn validate_page(no: u64, page: &[u8]) -> Result<()> {
    match PageKind::of(page[0]) {
        Some(PageKind::FreeTrunk) => freelist::validate(no, page),
        Some(PageKind::Overflow) => Ok(()),
        _ => node::validate(no, page),
    }
}

/// `<path>-wal`.
pub fn wal_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push("-wal");
    PathBuf::from(s)
}

impl Db {
    /// Opens (or, unless read-only, creates) the database at `path`.
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let path = path.as_ref().to_path_buf();
        if !format::valid_page_size(opts.page_size) {
            return Err(Error::invalid(format!(
                "page_size must be a power of two from 4096 to 65536, got {}",
                opts.page_size
            )));
        }
        let writable = !opts.read_only;
        let file = match opts.mode {
            OpenMode::OpenOrCreate => open_file(&path, "database file", writable)?,
            OpenMode::Open => existing_file(&path, writable)?,
            OpenMode::Create if opts.read_only => {
                return Err(Error::invalid(
                    "a new database cannot be opened read-only (create it writable)",
                ))
            }
            OpenMode::Create => new_file(&path)?,
        };
        // Without open-file-description locks (off Linux, so far) a handle has its file
        // to itself, as with locking="exclusive".
        let shared_mode = opts.locking == Locking::Shared && obj_sys::OFD_LOCKS;
        if shared_mode && obj_sys::is_network_fs(&file).unwrap_or(false) {
            return Err(Error::FeatureUnsupported(format!(
                "{} is on a network file system, where processes cannot safely share memory \
                 or byte-range locks; open it with locking=\"exclusive\" (one handle at a \
                 time)",
                path.display()
            )));
        }
        // The lock bytes need a description of their own, writable where possible
        // (exclusive byte locks need a descriptor open for writing, also for a reader).
        let lock_file = if shared_mode {
            match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(f) => f,
                Err(_) => file.try_clone()?,
            }
        } else {
            file.try_clone()?
        };
        // Every new build holds the file lock shared, an exclusive handle (and every older
        // build's writer) exclusive: an old and a new build never share a file.
        lock::acquire(&lock_file, &path, !shared_mode, opts.busy_timeout)?;
        let wal_file = wal_path(&path);
        let wal: Box<dyn StorageBackend> = if opts.read_only {
            match open_file(&wal_file, "WAL", false) {
                Ok(f) => Box::new(FileBackend::new(f)),
                // A writer in another process may create it later.
                Err(Error::NotFound(_)) if shared_mode => Box::new(LaterFile::new(&wal_file)),
                // Nothing to replay; a read-only handle never writes one.
                Err(Error::NotFound(_)) => Box::new(MemoryBackend::new()),
                Err(e) => return Err(e),
            }
        } else {
            Box::new(FileBackend::new(open_file(&wal_file, "WAL", true)?))
        };
        let main = Named::new(
            Box::new(FileBackend::new(file)),
            "the database file",
            Some(&path),
        );
        let wal = Named::new(wal, "the WAL", Some(&wal_file));
        let shm = if shared_mode {
            match Shm::open(&path, lock_file.try_clone()?, opts.busy_timeout) {
                Ok(shm) => Some(shm),
                // A reader where nothing may be written (a read-only medium) reads alone.
                Err(Error::Io(e))
                    if opts.read_only
                        && matches!(
                            e.kind(),
                            std::io::ErrorKind::PermissionDenied
                                | std::io::ErrorKind::ReadOnlyFilesystem
                        ) =>
                {
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        // The first handle on the file (no other holds `Dms`) creates or recovers it and
        // starts the shm afresh; every later one follows what the shm says.
        let first = match &shm {
            None => true,
            Some(s) if s.try_lock(Lock::Dms, LockKind::Exclusive)? => true,
            Some(s) => {
                s.lock(
                    Lock::Dms,
                    LockKind::Shared,
                    "another process was opening (creating or recovering) the database",
                )?;
                false
            }
        };
        if main.len()? == 0 && !opts.read_only {
            if !first {
                return Err(Error::Busy(format!(
                    "{} is empty while another process has it open; it may still be creating it",
                    path.display()
                )));
            }
            create_file(&main, &wal, &opts)?;
            sync_parent_dir(&path);
        }
        let (main, wal) = (Box::new(main), Box::new(wal));
        Self::open_backends(main, wal, opts, Some(lock_file), shm, first, path)
    }

    /// A new, empty database that lives in memory only: the same engine and semantics, and
    /// nothing touches the disk. It disappears when the handle is dropped.
    pub fn memory(opts: Options) -> Result<Db> {
        let opts = opts.read_only(false);
        Self::open_with_backends(
            Box::new(MemoryBackend::new()),
            Box::new(MemoryBackend::new()),
            opts,
        )
    }

    /// Opens a database over arbitrary backends (in-memory stores, fault injection). Empty
    /// stores are initialised unless the options say read-only.
    pub fn open_with_backends(
        main: Box<dyn StorageBackend>,
        wal: Box<dyn StorageBackend>,
        opts: Options,
    ) -> Result<Db> {
        let main = Box::new(Named::new(main, "the database file", None));
        let wal = Box::new(Named::new(wal, "the WAL", None));
        if main.len()? == 0 && !opts.read_only {
            create_file(main.as_ref(), wal.as_ref(), &opts)?;
        }
        Self::open_backends(main, wal, opts, None, None, true, PathBuf::from(":memory:"))
    }

    fn open_backends(
        main: Box<dyn StorageBackend>,
        wal: Box<dyn StorageBackend>,
        opts: Options,
        lock_file: Option<File>,
        shm: Option<Shm>,
        first: bool,
        path: PathBuf,
    ) -> Result<Db> {
        let len = main.len()?;
        if len < format::META_END as u64 {
            return Err(Error::corrupt(format!(
                "{} is not an obj database (file too short: {len} bytes)",
                path.display()
            )));
        }
        let mut head = vec![0u8; format::META_END];
        main.read_at(0, &mut head)?;
        let page_size = format::check_header_prefix(&head)? as usize;
        let required = format::get_u64(&head, format::META_REQUIRED);
        let reserved = format::reserved_bytes(required);
        let cipher = open_cipher(&head, required, &opts)?;
        // The main header names the WAL that belongs to it; if the header itself is damaged
        // (a torn checkpoint write), the WAL must supply page 0 and is trusted as it is.
        let owner = {
            // (A file cut inside page 0 is like a torn one; an I/O error is not: trusting
            // the WAL blindly after a failed read would let a fresh log start under a wrong
            // identity, and the next open would drop every commit made through it.)
            let mut page0 = vec![0u8; page_size];
            let whole = len >= page_size as u64;
            if whole {
                main.read_at(0, &mut page0)?;
            }
            if whole && format::verify_page(0, &page0[..page_size - reserved]).is_ok() {
                Meta::read_from(&page0[..page_size - reserved])
                    .ok()
                    .map(|m| wal::Owner {
                        db_id: m.db_id,
                        generation: m.wal_generation,
                        commit_seq: m.commit_seq,
                        reserved,
                    })
            } else {
                None
            }
        };
        if !opts.read_only {
            // Whatever an earlier handle wrote but could not sync becomes durable before
            // anything is built on it.
            main.sync()?;
        }
        let wal: Arc<dyn StorageBackend> = Arc::from(wal);
        let pager = Pager::new(
            main,
            wal.clone(),
            page_size,
            reserved,
            cipher,
            opts.cache_size,
            validate_page,
        );
        if !first {
            let shm = shm.ok_or_else(|| Error::corrupt("a shared open without its index"))?;
            return Self::join(pager, wal, owner, opts, lock_file, shm, path);
        }
        // Recovery streams the log: each committed frame is decoded and checked as it goes
        // by (damage is still found at open), and only where it lies is kept.
        let (wal, recovered) =
            Wal::open(wal, page_size, !opts.read_only, owner, &mut |no, page| {
                pager.check_physical(no, page)
            })?;
        let seq = recovered.commits.len() as u64;
        let mut first = 0;
        for (k, commit) in recovered.commits.iter().enumerate() {
            let pages = &recovered.frame_pages[first as usize..commit.end as usize];
            pager.index_commit(k as u64 + 1, first, pages.iter().copied());
            first = commit.end;
        }
        let last_size = recovered.commits.last().map(|c| c.db_pages);
        let meta = Meta::read_from(&pager.read(0, seq)?)?;
        if meta.page_size as usize != page_size {
            return Err(Error::corrupt_page(
                0,
                "page size differs between header copies",
            ));
        }
        // Every frame appended from here on is read back at the next open only if the log
        // carries the header's identity.
        if wal.db_id() != meta.db_id {
            return Err(Error::corrupt(
                "the WAL belongs to another database than the main file's header",
            ));
        }
        if let Some(size) = last_size {
            if size != meta.page_count {
                return Err(Error::corrupt(
                    "last WAL commit disagrees with the header's page count",
                ));
            }
        }
        // A checkpoint copies only synced frames, so a log that stops short of the commit the
        // main file holds lost commits the main file builds on: its pages would mix with
        // older ones from the log.
        if let Some(o) = owner.filter(|o| meta.commit_seq < o.commit_seq) {
            return Err(Error::corrupt(format!(
                "the WAL ends at commit {} but the main file already holds commit {}: the \
                 log lost commits the main file builds on; restore the database from a backup",
                meta.commit_seq, o.commit_seq
            )));
        }
        let coord = shm.map(|shm| {
            let pos = wal.position();
            shm.reset(wal.db_id(), &pos);
            Coord::new(shm, wal.db_id(), &pos)
        });
        if let Some(c) = &coord {
            // Others may open now.
            c.shm.try_lock(Lock::Dms, LockKind::Shared)?;
        }
        let place = Place {
            lock_file,
            coord,
            path,
        };
        let shared = Arc::new(Shared::new(pager, wal, seq, meta, opts, place));
        Ok(Db::watched(shared))
    }

    /// Opens a file other handles have open: nothing is recovered (the first opener did,
    /// and the log may be growing right now); the log is followed from the shm header.
    fn join(
        pager: Pager,
        wal: Arc<dyn StorageBackend>,
        owner: Option<wal::Owner>,
        opts: Options,
        lock_file: Option<File>,
        shm: Shm,
        path: PathBuf,
    ) -> Result<Db> {
        let page_size = pager.physical_size();
        let db_id = owner
            .map(|o| o.db_id)
            .or_else(|| shm.header().map(|(id, _)| id))
            .ok_or_else(|| {
                Error::corrupt("the main file's header is damaged and the shared index too")
            })?;
        let wal = Wal::detached(wal, page_size, db_id);
        // Others have the file open, yet there was no shm (and none was written since
        // they let this handle in): theirs was deleted under them.
        let split = shm.created && shm.header().is_none();
        let coord = Coord::new(shm, db_id, &wal.position());
        if split {
            coord.mark_split();
        }
        let placeholder = Meta::new(page_size as u32);
        let place = Place {
            lock_file,
            coord: Some(coord),
            path,
        };
        let shared = Arc::new(Shared::new(pager, wal, 0, placeholder, opts, place));
        shared.forget_meta();
        let db = Db::watched(shared);
        let shared = &db.shared;
        let meta = ReadTxn::new(shared.pin_latest()?).meta().clone();
        if meta.db_id != db_id {
            return Err(Error::corrupt(
                "the WAL belongs to another database than the main file's header",
            ));
        }
        Ok(db)
    }

    /// A handle over `shared`; one shared with other processes has its idle pins reaped.
    fn watched(shared: Arc<Shared>) -> Db {
        if shared.is_shared() {
            let idle: Arc<dyn crate::coord::Idle> = shared.clone();
            crate::coord::watch(Arc::downgrade(&idle));
        }
        Db { shared }
    }

    /// A snapshot of the latest commit.
    pub fn begin_read(&self) -> Result<ReadTxn> {
        Ok(ReadTxn::new(self.shared.pin_latest()?))
    }

    /// Starts the write transaction, waiting up to the busy timeout for the current writer.
    pub fn begin_write(&self) -> Result<WriteTxn> {
        self.shared.check_writable()?;
        let writer = self.shared.writer()?;
        self.shared.check_writable()?;
        let (seq, mut meta) = self.shared.latest(&writer)?;
        if self.shared.opts().compression {
            if format::KNOWN_REQUIRED_FEATURES & format::FEATURE_LZ4 == 0 {
                return Err(Error::FeatureUnsupported(
                    "compression-lz4: this build has no compression".into(),
                ));
            }
            // Recorded in the header by the first commit; from then on the file needs lz4.
            meta.required_features |= format::FEATURE_LZ4;
        }
        let mut txn = WriteTxn::new(writer, self.shared.clone(), seq, meta);
        txn.start_log()?;
        Ok(txn)
    }

    /// Turns the change log on with `settings`, changes its settings, or (None) turns it
    /// off, in a commit of its own (which appends no record); true if anything changed.
    pub fn set_changes(&self, settings: Option<crate::changes::LogSettings>) -> Result<bool> {
        let mut txn = self.begin_write()?;
        let changed = txn.set_changes(settings)?;
        if changed {
            txn.commit()?;
        }
        Ok(changed)
    }

    /// Waits until a commit after number `after` (a snapshot's
    /// [`ReadTxn::commit_seq`]) is visible, or `timeout` passes; returns the latest commit
    /// number. Followers of the change log block here instead of polling.
    pub fn wait_commit(&self, after: u64, timeout: Option<std::time::Duration>) -> Result<u64> {
        self.shared.wait_commit(after, timeout)
    }

    /// Copies committed pages from the WAL into the main file and, when no reader still
    /// needs the log, resets it to its header.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        self.shared.checkpoint()
    }

    /// Makes every commit acknowledged so far durable now (an fsync of the log), whatever
    /// the durability level: under [`Durability::Immediate`](crate::Durability) it has
    /// nothing to do, under `Eventual` and `None` it is the sync those levels skip.
    pub fn flush(&self) -> Result<()> {
        self.shared.flush()
    }

    /// Writes a consistent copy of the latest commit to `dest` while readers and writers go
    /// on (it reads one snapshot). The copy is a database of its own (new identity, no WAL)
    /// and is written to a temporary file first, so `dest` never holds a partial copy.
    /// An existing `dest` is refused unless `overwrite`.
    pub fn backup(&self, dest: impl AsRef<Path>, overwrite: bool) -> Result<u64> {
        let dest = dest.as_ref();
        if dest.exists() && !overwrite {
            return Err(Error::invalid(format!(
                "backup destination {} already exists; remove it or pass overwrite=True",
                dest.display()
            )));
        }
        if dest.exists()
            && self.shared.path().exists()
            && std::fs::canonicalize(dest)? == std::fs::canonicalize(self.shared.path())?
        {
            return Err(Error::invalid("backup destination is the database itself"));
        }
        let snap = self.begin_read()?;
        let meta = snap.meta().clone();
        let pager = &self.shared.pager;
        let ps = pager.physical_size();
        // Pages on the freelist (other than trunks) may never have been written: copy zeros.
        let mut unused = std::collections::HashSet::new();
        let mut trunk = meta.free_head;
        while trunk != 0 && (unused.len() as u64) <= meta.page_count {
            let page = crate::btree::PageRead::page(&snap, trunk)?;
            unused.extend((0..freelist::count(&page)).map(|i| freelist::entry(&page, i)));
            trunk = freelist::next(&page);
        }
        let mut tmp_name = dest.as_os_str().to_os_string();
        tmp_name.push(format!(".tmp-{:x}", crate::wal::random_u64()));
        let tmp = PathBuf::from(tmp_name);
        let result = (|| -> Result<()> {
            let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            let out = FileBackend::new(file);
            let mut copy_meta = meta.clone();
            copy_meta.db_id = crate::wal::random_u64();
            copy_meta.wal_generation = 0;
            let mut page0 = vec![0u8; pager.page_size()];
            copy_meta.write_to(&mut page0);
            format::seal_page(0, &mut page0);
            let mut batch = pager.encode(0, &page0)?.into_owned();
            let zero = vec![0u8; ps];
            for no in 1..meta.page_count {
                if unused.contains(&no) {
                    batch.extend_from_slice(&zero);
                } else {
                    let page = crate::btree::PageRead::page(&snap, no)?;
                    batch.extend_from_slice(&pager.encode(no, &page)?);
                }
                if batch.len() >= 256 * ps {
                    out.write_at((no + 1) * ps as u64 - batch.len() as u64, &batch)?;
                    batch.clear();
                }
            }
            let written = meta.page_count * ps as u64 - batch.len() as u64;
            out.write_at(written, &batch)?;
            out.sync()?;
            std::fs::rename(&tmp, dest)?;
            let _ = std::fs::remove_file(wal_path(dest));
            sync_parent_dir(dest);
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        Ok(meta.page_count * ps as u64)
    }

    /// Deletes expired table items, then rewrites the database so it occupies only the pages
    /// it uses: live pages above that size move into free pages below it (one write
    /// transaction), and a checkpoint truncates the file. With a reader still on an older snapshot the truncation waits for a later
    /// checkpoint (`CompactInfo::truncated` is false).
    pub fn compact(&self) -> Result<CompactInfo> {
        let mut tx = self.begin_write()?;
        // Expired table items go first, so their pages are given back too.
        for name in tx.collections()? {
            crate::table::reclaim(&mut tx, &name, usize::MAX)?;
        }
        let mut info = compact::compact(&mut tx)?;
        tx.commit()?;
        let cp = self.checkpoint()?;
        info.truncated = cp.wal_reset;
        Ok(info)
    }

    /// Call right before `fork()` (the Python binding does, from `os.register_at_fork`):
    /// the engine's background thread then holds none of its locks, so a child can open
    /// databases afresh. Pair it with [`Db::after_fork`] in the parent and the child.
    pub fn before_fork() {
        crate::coord::before_fork();
    }

    /// Call right after `fork()`, in the parent and in the child (see [`Db::before_fork`]).
    pub fn after_fork() {
        crate::coord::after_fork();
    }

    /// Call in a child process right after `fork()`: the handle (opened by the parent) then
    /// refuses every call with `Error::Closed` saying to open the database again, and
    /// closing or dropping it releases none of the parent's locks and writes nothing. (The
    /// Python binding calls it from `os.register_at_fork`.)
    pub fn forget_after_fork(&self) {
        self.shared.mark_forked();
    }

    /// Checkpoints best-effort, then releases the file lock. Idempotent; later calls on this
    /// handle or its transactions fail with `Error::Closed`.
    pub fn close(&self) -> Result<()> {
        self.shared.close(true)
    }

    /// Closes without the checkpoint (for a handle whose user hit an error).
    pub fn close_without_checkpoint(&self) -> Result<()> {
        self.shared.close(false)
    }

    /// The live snapshots of this handle (see [`ReaderStat`]).
    pub fn readers(&self) -> ReaderStat {
        self.shared.readers()
    }

    /// Counts and sizes of the latest commit: per collection (documents, bytes of its pages
    /// and indexes) and for the whole file.
    pub fn stat(&self) -> Result<Stat> {
        let snap = self.begin_read()?;
        crate::stat::stat(
            &snap,
            self.shared.pager.physical_size() as u64,
            self.wal_frames(),
        )
    }

    /// Walks every tree, overflow chain and the freelist of the latest commit.
    pub fn integrity_check(&self) -> Result<IntegrityReport> {
        let snap = self.begin_read()?;
        integrity::check(&snap)
    }

    /// The path the database was opened at (`:memory:` for one in memory).
    pub fn path(&self) -> &Path {
        self.shared.path()
    }

    /// True when opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.shared.opts().read_only
    }

    /// True once [`Db::close`] ran.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// The page size of the file (on disk, including any bytes reserved for encryption).
    pub fn page_size(&self) -> usize {
        self.shared.pager.physical_size()
    }

    /// Committed frames currently in the WAL.
    pub fn wal_frames(&self) -> u64 {
        self.shared.wal_frames()
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.shared.path())
            .field("read_only", &self.shared.opts().read_only)
            .finish()
    }
}

/// Opens the database file or its WAL (`what`), for writing (and created if missing) when
/// `writable`. A failure names the file and says what to do: a missing directory is named as
/// such, and a file the process may not write points at `read_only`.
fn open_file(path: &Path, what: &str, writable: bool) -> Result<File> {
    let mut how = OpenOptions::new();
    how.read(true);
    if writable {
        how.write(true).create(true).truncate(false);
    }
    how.open(path)
        .map_err(|e| open_error(e, path, what, writable))
}

/// The database file at `path`, which must exist.
fn existing_file(path: &Path, writable: bool) -> Result<File> {
    let mut how = OpenOptions::new();
    how.read(true).write(writable);
    how.open(path)
        .map_err(|e| open_error(e, path, "database file", writable))
}

/// A new database file at `path`; refused when one exists.
fn new_file(path: &Path) -> Result<File> {
    let mut how = OpenOptions::new();
    how.read(true).write(true).create_new(true);
    how.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => Error::Exists(format!(
            "database file {} already exists (open it instead, or choose another path)",
            path.display()
        )),
        _ => open_error(e, path, "database file", true),
    })
}

fn open_error(e: std::io::Error, path: &Path, what: &str, writable: bool) -> Error {
    use std::io::ErrorKind as K;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let action = format!(
        "opening the {what} {}{}",
        path.display(),
        if writable { " for writing" } else { "" }
    );
    let hint = match e.kind() {
        K::NotFound if !dir.is_dir() => {
            return Error::NotFound(format!(
                "cannot open the {what} {}: directory {} does not exist",
                path.display(),
                dir.display()
            ))
        }
        K::NotFound => return Error::NotFound(format!("{what} {} does not exist", path.display())),
        K::PermissionDenied | K::ReadOnlyFilesystem if writable => Some(
            "to read the database without writing to it, open it with read_only=True".to_string(),
        ),
        K::NotADirectory => path
            .ancestors()
            .skip(1)
            .find(|a| !a.as_os_str().is_empty() && a.exists() && !a.is_dir())
            .map(|file| format!("{} is a file, not a directory", file.display())),
        K::IsADirectory => Some(format!(
            "{} is a directory; the path must name the database file",
            path.display()
        )),
        _ => None,
    };
    Error::Io(IoContext::wrap(e, action, Some(path), hint.as_deref()))
}

/// Makes a new or renamed directory entry durable (best-effort: not every file system
/// supports syncing a directory).
fn sync_parent_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Writes the header page and an empty catalog to a new store, and empties the WAL.
fn create_file(main: &dyn StorageBackend, wal: &dyn StorageBackend, opts: &Options) -> Result<()> {
    let ps = opts.page_size as usize;
    let mut meta = Meta::new(opts.page_size);
    meta.db_id = crate::wal::random_u64();
    let cipher = match &opts.encryption_key {
        Some(key) => {
            meta.kdf_salt = crate::cipher::random_salt()?;
            let (cipher, kdf) = PageCipher::new(key, &meta.kdf_salt)?;
            meta.kdf = kdf;
            meta.key_check = cipher.key_check();
            meta.required_features |= format::FEATURE_ENCRYPTION;
            Some(cipher)
        }
        None => None,
    };
    let logical = ps - format::reserved_bytes(meta.required_features);
    let mut page0 = vec![0u8; logical];
    meta.write_to(&mut page0);
    format::seal_page(0, &mut page0);
    page0.resize(ps, 0);
    let mut catalog = vec![0u8; logical];
    node::init(&mut catalog, PageKind::Leaf);
    format::seal_page(1, &mut catalog);
    let catalog = match &cipher {
        Some(c) => c.seal(1, &catalog)?,
        None => catalog,
    };
    // One write: a failed create leaves an empty file, which the next open starts afresh.
    let mut both = page0;
    both.extend_from_slice(&catalog);
    main.write_at(0, &both)?;
    main.sync()?;
    wal.set_len(0)?;
    Ok(())
}

/// The page cipher for an encrypted header, after checking the key; refuses a key for a
/// file that is not encrypted.
fn open_cipher(head: &[u8], required: u64, opts: &Options) -> Result<Option<PageCipher>> {
    let encrypted = required & format::FEATURE_ENCRYPTION != 0;
    match (&opts.encryption_key, encrypted) {
        (None, false) => Ok(None),
        (Some(_), false) => Err(Error::Encryption(
            "the database is not encrypted, but an encryption key was given; open it without one"
                .into(),
        )),
        (None, true) => Err(Error::Encryption(
            "the database is encrypted; pass its encryption key to open it".into(),
        )),
        (Some(key), true) => {
            let salt: [u8; 16] = head[format::META_KDF_SALT..format::META_KDF_SALT + 16]
                .try_into()
                .map_err(|_| Error::corrupt_page(0, "short header"))?;
            let (cipher, _) = PageCipher::new(key, &salt)?;
            if cipher.key_check() != head[format::META_KEY_CHECK..format::META_KEY_CHECK + 16] {
                return Err(Error::Encryption(
                    "wrong encryption key for this database".into(),
                ));
            }
            Ok(Some(cipher))
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Db>();
    is::<ReadTxn>();
    is::<WriteTxn>();
    let _ = btree::MAX_DEPTH;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Permission bits do not stop root (the tests may run as root), so the message for a
    /// refused read-write open is checked on the error the OS would give.
    #[test]
    fn a_refused_read_write_open_names_the_file_and_points_at_read_only() {
        let path = Path::new("/data/app.obj");
        for errno in [13, 30] {
            // EACCES, EROFS
            let e = open_error(
                std::io::Error::from_raw_os_error(errno),
                path,
                "database file",
                true,
            );
            assert!(matches!(e, Error::Io(_)));
            assert_eq!(e.os_error(), Some(errno));
            assert_eq!(e.io_path(), Some(path));
            let msg = e.to_string();
            assert!(
                msg.contains("opening the database file /data/app.obj for writing failed")
                    && msg.contains(&std::io::Error::from_raw_os_error(errno).to_string())
                    && msg.contains("open it with read_only=True"),
                "{msg}"
            );
            // A read-only open has no better mode to point at.
            let e = open_error(std::io::Error::from_raw_os_error(errno), path, "WAL", false);
            assert!(!e.to_string().contains("read_only"), "{e}");
        }
    }
}
