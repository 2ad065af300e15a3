//! The database handle: open/create, recovery, commit publication, checkpoints, close.

use crate::backend::{FileBackend, MemoryBackend, Named, StorageBackend};
use crate::btree::{self, node};
use crate::catalog::IndexDef;
use crate::cipher::PageCipher;
use crate::codec::Schema;
use crate::compact::CompactInfo;
use crate::error::{Error, IoContext, Result};
use crate::format::{self, Meta, PageKind};
use crate::freelist;
use crate::integrity::{self, IntegrityReport};
use crate::lock;
use crate::pager::{PageBuf, Pager};
use crate::stat::Stat;
use crate::txn::{ReadTxn, WriteTxn};
use crate::wal::{self, Wal};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// When commits reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// fsync the WAL on every commit: an acknowledged commit survives power loss.
    #[default]
    Immediate,
    /// No fsync per commit; the WAL is synced at checkpoint. Survives a process crash,
    /// may lose the latest commits on power loss.
    Eventual,
    /// Never fsync. For scratch data and tests.
    None,
}

/// Options for [`Db::open`].
#[derive(Clone, Debug)]
pub struct Options {
    pub read_only: bool,
    /// Page size for a new file (power of two, 4 KiB to 64 KiB); an existing file keeps its own.
    pub page_size: u32,
    /// How long to wait for the writer lock (in-process) or the file lock (other processes).
    pub busy_timeout: Duration,
    pub durability: Durability,
    /// Encrypts every page (but the header) with this key; needed again to open the file.
    pub encryption_key: Option<crate::cipher::EncryptionKey>,
    /// Bytes of main-file pages kept in the shared page cache.
    pub cache_size: usize,
    /// WAL frames after which a commit triggers an automatic checkpoint.
    pub checkpoint_frames: u64,
    /// Compress payloads of 256 bytes or more with lz4 (when that makes them smaller).
    /// Turning it on marks the file as needing lz4 to open; it then stays on.
    pub compression: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_only: false,
            page_size: format::DEFAULT_PAGE_SIZE,
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Immediate,
            encryption_key: None,
            cache_size: 256 << 20,
            checkpoint_frames: 1000,
            compression: false,
        }
    }
}

/// What a checkpoint did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Page versions copied from the WAL into the main file.
    pub frames_copied: u64,
    /// True when the WAL was reset to its header.
    pub wal_reset: bool,
    /// True when a live reader kept some frames in the WAL.
    pub deferred: bool,
}

/// The readers of one commit.
struct Pins {
    count: usize,
    since: Instant,
}

impl Pins {
    fn add(readers: &mut BTreeMap<u64, Pins>, seq: u64) {
        readers
            .entry(seq)
            .or_insert_with(|| Pins {
                count: 0,
                since: Instant::now(),
            })
            .count += 1;
    }
}

/// Who holds snapshots open (for `stat`): what a long-lived reader keeps in the log.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReaderStat {
    /// The latest commit.
    pub commit_seq: u64,
    /// Live snapshots (read transactions, iterators, views) on this handle.
    pub readers: u64,
    /// The commit the oldest live snapshot reads, and how long it has been pinned.
    pub oldest: Option<(u64, Duration)>,
}

struct Published {
    seq: u64,
    meta: Meta,
    /// Live snapshots: commit number → how many readers pin it, and since when.
    readers: BTreeMap<u64, Pins>,
}

type IndexDefs = Arc<Vec<IndexDef>>;

pub(crate) struct Shared {
    pub(crate) pager: Pager,
    wal: Mutex<Wal>,
    published: Mutex<Published>,
    writer_busy: Mutex<bool>,
    writer_cv: Condvar,
    /// Collection roots never move; each entry is valid for snapshots at or after its seq.
    roots: RwLock<HashMap<String, (u64, u64)>>,
    /// Committed schemas; a stored (collection, version) shape never changes.
    schemas: RwLock<HashMap<String, HashMap<u32, Arc<Schema>>>>,
    /// Latest committed index definitions per collection, valid from the given commit.
    indexes: RwLock<HashMap<String, (u64, IndexDefs)>>,
    opts: Options,
    /// The first failure while writing the log or checkpointing: from then on the handle
    /// refuses writes, and every refusal restates it.
    failed: OnceLock<Failure>,
    closed: AtomicBool,
    lock_file: Option<File>,
    path: PathBuf,
}

/// Why a handle refuses writes: what failed (`during`: "a commit", "an automatic
/// checkpoint", ...) and the error it failed with.
struct Failure {
    during: &'static str,
    cause: Cause,
}

/// A kept copy of an error: an I/O error keeps its kind, OS error number and file.
enum Cause {
    Io(std::io::Error),
    Other(String),
}

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
        let file = open_file(&path, "database file", writable)?;
        let lock_file = file.try_clone()?;
        lock::acquire(&lock_file, &path, writable, opts.busy_timeout)?;
        let wal_file = wal_path(&path);
        let wal: Box<dyn StorageBackend> = if opts.read_only {
            match open_file(&wal_file, "WAL", false) {
                Ok(f) => Box::new(FileBackend::new(f)),
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
        let created = main.len()? == 0 && !opts.read_only;
        if created {
            create_file(&main, &wal, &opts)?;
            sync_parent_dir(&path);
        }
        let (main, wal) = (Box::new(main), Box::new(wal));
        Self::open_backends(main, wal, opts, Some(lock_file), path)
    }

    /// A new, empty database that lives in memory only: the same engine and semantics, and
    /// nothing touches the disk. It disappears when the handle is dropped.
    pub fn memory(opts: Options) -> Result<Db> {
        let opts = Options {
            read_only: false,
            ..opts
        };
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
        Self::open_backends(main, wal, opts, None, PathBuf::from(":memory:"))
    }

    fn open_backends(
        main: Box<dyn StorageBackend>,
        wal: Box<dyn StorageBackend>,
        opts: Options,
        lock_file: Option<File>,
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
            let mut page0 = vec![0u8; page_size];
            match main.read_at(0, &mut page0) {
                Ok(()) if format::verify_page(0, &page0[..page_size - reserved]).is_ok() => {
                    Meta::read_from(&page0[..page_size - reserved])
                        .ok()
                        .map(|m| wal::Owner {
                            db_id: m.db_id,
                            generation: m.wal_generation,
                            commit_seq: m.commit_seq,
                            reserved,
                        })
                }
                _ => None,
            }
        };
        if !opts.read_only {
            // Whatever an earlier handle wrote but could not sync becomes durable before
            // anything is built on it.
            main.sync()?;
        }
        let (wal, commits) = Wal::open(wal, page_size, !opts.read_only, owner)?;
        let pager = Pager::new(
            main,
            page_size,
            reserved,
            cipher,
            opts.cache_size,
            validate_page,
        );
        let mut last_size = None;
        let seq = commits.len() as u64;
        for (k, commit) in commits.into_iter().enumerate() {
            let mut pages: Vec<(u64, PageBuf)> = Vec::with_capacity(commit.pages.len());
            for (no, page) in commit.pages {
                let page = pager.decode(no, page)?;
                pager.check(no, &page)?;
                pages.push((no, Arc::new(page)));
            }
            pager.publish(k as u64 + 1, pages);
            last_size = Some(commit.db_pages);
        }
        let meta = Meta::read_from(&pager.read(0, seq)?)?;
        if meta.page_size as usize != page_size {
            return Err(Error::corrupt_page(
                0,
                "page size differs between header copies",
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
        let shared = Arc::new(Shared {
            pager,
            wal: Mutex::new(wal),
            published: Mutex::new(Published {
                seq,
                meta,
                readers: BTreeMap::new(),
            }),
            writer_busy: Mutex::new(false),
            writer_cv: Condvar::new(),
            roots: RwLock::new(HashMap::new()),
            schemas: RwLock::new(HashMap::new()),
            indexes: RwLock::new(HashMap::new()),
            opts,
            failed: OnceLock::new(),
            closed: AtomicBool::new(false),
            lock_file,
            path,
        });
        Ok(Db { shared })
    }

    /// A snapshot of the latest commit.
    pub fn begin_read(&self) -> Result<ReadTxn> {
        self.shared.check_open()?;
        let (seq, meta) = {
            let mut p = self.shared.published.lock();
            let seq = p.seq;
            Pins::add(&mut p.readers, seq);
            (seq, p.meta.clone())
        };
        Ok(ReadTxn::new(self.shared.clone(), seq, meta))
    }

    /// Starts the write transaction, waiting up to the busy timeout for the current writer.
    pub fn begin_write(&self) -> Result<WriteTxn> {
        self.shared.check_writable()?;
        self.shared.acquire_writer()?;
        if let Err(e) = self.shared.check_writable() {
            self.shared.release_writer();
            return Err(e);
        }
        let (seq, mut meta) = {
            let p = self.shared.published.lock();
            (p.seq, p.meta.clone())
        };
        if self.shared.opts.compression {
            if format::KNOWN_REQUIRED_FEATURES & format::FEATURE_LZ4 == 0 {
                self.shared.release_writer();
                return Err(Error::FeatureUnsupported(
                    "compression-lz4: this build has no compression".into(),
                ));
            }
            // Recorded in the header by the first commit; from then on the file needs lz4.
            meta.required_features |= format::FEATURE_LZ4;
        }
        Ok(WriteTxn::new(self.shared.clone(), seq, meta))
    }

    /// Copies committed pages from the WAL into the main file and, when no reader still
    /// needs the log, resets it to its header.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        self.shared.check_writable()?;
        self.shared.acquire_writer()?;
        let result = self.shared.checkpoint_locked(true);
        self.shared.release_writer();
        result
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
            && self.shared.path.exists()
            && std::fs::canonicalize(dest)? == std::fs::canonicalize(&self.shared.path)?
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

    /// Rewrites the database so it occupies only the pages it uses: live pages above that size
    /// move into free pages below it (one write transaction), and a checkpoint truncates the
    /// file. With a reader still on an older snapshot the truncation waits for a later
    /// checkpoint (`CompactInfo::truncated` is false).
    pub fn compact(&self) -> Result<CompactInfo> {
        let mut tx = self.begin_write()?;
        let mut info = tx.compact_pages()?;
        tx.commit()?;
        let cp = self.checkpoint()?;
        info.truncated = cp.wal_reset;
        Ok(info)
    }

    /// Checkpoints best-effort, then releases the file lock. Idempotent; later calls on this
    /// handle or its transactions fail with `Error::Closed`.
    pub fn close(&self) -> Result<()> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        if !shared.opts.read_only && shared.failed.get().is_none() && shared.try_acquire_writer() {
            let _ = shared.checkpoint_locked(true);
            shared.release_writer();
        }
        shared.closed.store(true, Ordering::Release);
        if let Some(f) = &shared.lock_file {
            f.unlock()?;
        }
        Ok(())
    }

    /// Closes without the checkpoint (for a handle whose user hit an error).
    pub fn close_without_checkpoint(&self) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(f) = &self.shared.lock_file {
            f.unlock()?;
        }
        Ok(())
    }

    /// The live snapshots of this handle (see [`ReaderStat`]).
    pub fn readers(&self) -> ReaderStat {
        let p = self.shared.published.lock();
        ReaderStat {
            commit_seq: p.seq,
            readers: p.readers.values().map(|pins| pins.count as u64).sum(),
            oldest: p
                .readers
                .iter()
                .next()
                .map(|(seq, pins)| (*seq, pins.since.elapsed())),
        }
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

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    pub fn is_read_only(&self) -> bool {
        self.shared.opts.read_only
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// The page size of the file (on disk, including any bytes reserved for encryption).
    pub fn page_size(&self) -> usize {
        self.shared.pager.physical_size()
    }

    /// Committed frames currently in the WAL.
    pub fn wal_frames(&self) -> u64 {
        self.shared.wal.lock().frames()
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
            .field("path", &self.shared.path)
            .field("read_only", &self.shared.opts.read_only)
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

impl Shared {
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the database has been closed".into()));
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.opts.read_only {
            return Err(Error::ReadOnly(format!(
                "{} was opened read-only",
                self.path.display()
            )));
        }
        self.check_not_failed()
    }

    /// Refuses once a write to the log or a checkpoint failed, restating that failure: an I/O
    /// cause gives an I/O error of the same kind, OS error number and file.
    pub(crate) fn check_not_failed(&self) -> Result<()> {
        let Some(Failure { during, cause }) = self.failed.get() else {
            return Ok(());
        };
        let message = |cause: &dyn std::fmt::Display| {
            format!(
                "{during} failed earlier, so this handle refuses writes: {cause}; reopen the \
                 database to continue"
            )
        };
        Err(match cause {
            Cause::Io(e) => Error::Io(IoContext::restate(e, message(e))),
            Cause::Other(m) => Error::Closed(message(m)),
        })
    }

    /// Records the first failure that leaves the handle unable to write.
    fn fail(&self, during: &'static str, e: &Error) {
        let cause = match e {
            Error::Io(io) => Cause::Io(IoContext::restate(io, io.to_string())),
            other => Cause::Other(other.to_string()),
        };
        let _ = self.failed.set(Failure { during, cause });
    }

    fn acquire_writer(&self) -> Result<()> {
        let deadline = Instant::now() + self.opts.busy_timeout;
        let mut busy = self.writer_busy.lock();
        while *busy {
            if self.writer_cv.wait_until(&mut busy, deadline).timed_out() && *busy {
                return Err(Error::Busy(format!(
                    "another write transaction held the writer lock for longer than {:.1}s",
                    self.opts.busy_timeout.as_secs_f64()
                )));
            }
        }
        *busy = true;
        Ok(())
    }

    fn try_acquire_writer(&self) -> bool {
        let mut busy = self.writer_busy.lock();
        if *busy {
            return false;
        }
        *busy = true;
        true
    }

    pub(crate) fn release_writer(&self) {
        *self.writer_busy.lock() = false;
        self.writer_cv.notify_one();
    }

    /// A snapshot of commit `seq`, which the caller knows is still readable (the writer's
    /// base commit, pinned here before anything can checkpoint past it).
    pub(crate) fn pin_snapshot(self: &Arc<Self>, seq: u64, meta: Meta) -> ReadTxn {
        Pins::add(&mut self.published.lock().readers, seq);
        ReadTxn::new(self.clone(), seq, meta)
    }

    pub(crate) fn unpin_reader(&self, seq: u64) {
        let mut p = self.published.lock();
        if let Some(pins) = p.readers.get_mut(&seq) {
            pins.count -= 1;
            if pins.count == 0 {
                p.readers.remove(&seq);
            }
        }
    }

    pub(crate) fn cached_root(&self, collection: &str, seq: u64) -> Option<u64> {
        let roots = self.roots.read();
        roots
            .get(collection)
            .filter(|(_, since)| *since <= seq)
            .map(|(root, _)| *root)
    }

    /// A reader found `root` in its snapshot: keep it only if nothing newer is known (a
    /// writer that creates or moves a root publishes it at commit).
    pub(crate) fn offer_root(&self, collection: &str, root: u64, seen_at: u64) {
        self.roots
            .write()
            .entry(collection.to_string())
            .or_insert((root, seen_at));
    }

    /// A commit created or moved the root: it holds from `seq` on.
    pub(crate) fn publish_root(&self, collection: &str, root: u64, seq: u64) {
        self.roots
            .write()
            .insert(collection.to_string(), (root, seq));
    }

    pub(crate) fn cached_schema(&self, collection: &str, version: u32) -> Option<Arc<Schema>> {
        self.schemas.read().get(collection)?.get(&version).cloned()
    }

    pub(crate) fn cache_schema(&self, collection: &str, schema: Arc<Schema>) {
        self.schemas
            .write()
            .entry(collection.to_string())
            .or_default()
            .insert(schema.version, schema);
    }

    pub(crate) fn cached_indexes(&self, collection: &str, seq: u64) -> Option<Arc<Vec<IndexDef>>> {
        let cache = self.indexes.read();
        cache
            .get(collection)
            .filter(|(since, _)| *since <= seq)
            .map(|(_, d)| d.clone())
    }

    /// A writer's commit changed the definitions: they hold from `seq` on.
    pub(crate) fn publish_indexes(&self, collection: &str, seq: u64, defs: Arc<Vec<IndexDef>>) {
        self.indexes
            .write()
            .insert(collection.to_string(), (seq, defs));
    }

    /// A reader loaded the definitions of its snapshot: keep them only if nothing newer is
    /// known (any later change was published by its writer and is already here).
    pub(crate) fn offer_indexes(&self, collection: &str, seq: u64, defs: Arc<Vec<IndexDef>>) {
        self.indexes
            .write()
            .entry(collection.to_string())
            .or_insert((seq, defs));
    }

    pub(crate) fn wal_generation(&self) -> u64 {
        self.wal.lock().generation()
    }

    /// Appends a commit to the WAL and publishes it. Called by `WriteTxn::commit` with the
    /// writer lock held.
    pub(crate) fn commit_pages(
        &self,
        base_seq: u64,
        pages: Vec<(u64, PageBuf)>,
        meta: Meta,
        new_roots: &[(String, u64)],
    ) -> Result<()> {
        let seq = base_seq + 1;
        let sync = self.opts.durability == Durability::Immediate;
        let mut wal = self.wal.lock();
        {
            let encoded = pages
                .iter()
                .map(|(no, p)| Ok((*no, self.pager.encode(*no, p)?)))
                .collect::<Result<Vec<_>>>()?;
            let frames: Vec<(u64, &[u8])> = encoded.iter().map(|(no, p)| (*no, &**p)).collect();
            if let Err(e) = wal.append_commit(&frames, meta.page_count, sync) {
                self.fail("writing a commit to the log", &e);
                return Err(e);
            }
        }
        self.pager.publish(seq, pages);
        for (name, root) in new_roots {
            self.publish_root(name, *root, seq);
        }
        {
            let mut p = self.published.lock();
            p.seq = seq;
            p.meta = meta;
        }
        if wal.frames() >= self.opts.checkpoint_frames {
            drop(wal);
            // The commit is already durable; a failed automatic checkpoint loses nothing (and
            // makes the handle refuse further writes until reopened, naming the cause).
            let _ = self.checkpoint_locked(false);
        }
        Ok(())
    }

    /// Checkpoint with the writer lock held. A failure part-way leaves the main file or the
    /// log in a state this handle can no longer describe, so it turns the handle read-only
    /// until reopened (recovery then sorts it out from what is on disk).
    ///
    /// `shrink` (explicit checkpoints and close) also gives the log's disk space back; the
    /// automatic checkpoint after a commit keeps the file to rewrite it in place.
    fn checkpoint_locked(&self, shrink: bool) -> Result<CheckpointInfo> {
        let result = self.checkpoint_steps(shrink);
        if let Err(e) = &result {
            let during = if shrink {
                "a checkpoint"
            } else {
                "an automatic checkpoint"
            };
            self.fail(during, e);
        }
        result
    }

    fn checkpoint_steps(&self, shrink: bool) -> Result<CheckpointInfo> {
        let sync = self.opts.durability != Durability::None;
        if !self.pager.has_versions() {
            if shrink {
                self.wal.lock().truncate_stale(sync)?;
            }
            return Ok(CheckpointInfo::default());
        }
        let (latest, upto, page_count) = {
            let p = self.published.lock();
            let oldest = p.readers.keys().next().copied().unwrap_or(p.seq);
            (p.seq, oldest.min(p.seq), p.meta.page_count)
        };
        let mut wal = self.wal.lock();
        if sync {
            wal.sync()?;
        }
        let backfill = self.pager.backfill(upto, latest)?;
        if backfill.complete {
            // Exactly the database size: grows over pages never written, and gives pages
            // back to the file system after a compaction.
            let main = self.pager.main();
            let want = page_count
                .checked_mul(self.pager.physical_size() as u64)
                .ok_or_else(|| Error::corrupt_page(0, "page count out of range"))?;
            if main.len()? != want {
                main.set_len(want)?;
            }
        }
        if sync && backfill.pages_written > 0 {
            self.pager.main().sync()?;
        }
        if backfill.complete {
            // Keep a log of up to twice the automatic checkpoint size for in-place reuse.
            let keep = if shrink {
                0
            } else {
                let frame = (wal::FRAME_HEADER_SIZE + self.pager.physical_size()) as u64;
                self.opts
                    .checkpoint_frames
                    .saturating_mul(2)
                    .saturating_mul(frame)
            };
            wal.reset(sync, keep)?;
            self.pager.clear_versions();
        }
        Ok(CheckpointInfo {
            frames_copied: backfill.pages_written,
            wal_reset: backfill.complete,
            deferred: !backfill.complete,
        })
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
