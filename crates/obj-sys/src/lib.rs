//! The system calls obj needs that the standard library does not offer, each behind a safe
//! function; the rest of the engine keeps `#![forbid(unsafe_code)]`. Every `unsafe` block
//! here says why it is sound.
//!
//! Open-file-description (OFD) byte-range locks, for several processes on one database
//! (`docs/architecture.md`, "Several processes on one file"): a lock belongs to the open
//! file description (one `File::open`), not to the process as POSIX record locks do. So
//! two descriptions in one process conflict as two processes would, closing another
//! descriptor of the same file releases nothing, and the kernel releases every lock of a
//! process that dies, however it dies. Linux only so far; elsewhere the functions return
//! `ErrorKind::Unsupported` (and the engine keeps its exclusive mode).

#![deny(unsafe_op_in_unsafe_fn, missing_docs)]

use std::fs::File;
use std::io;

/// True where [`try_lock`] works (open-file-description locks exist): Linux. Elsewhere
/// the engine opens files for one handle at a time.
pub const OFD_LOCKS: bool = cfg!(target_os = "linux");

/// Which lock to take on a byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Any number of holders at once, none exclusive.
    Shared,
    /// One holder, no shared ones.
    Exclusive,
}

/// Tries to lock `len` bytes of `file` from `start` (the bytes need not exist in the file);
/// Ok(false) when another description holds a conflicting lock. Taking a lock over one this
/// description holds converts it (shared to exclusive or back) atomically.
pub fn try_lock(file: &File, start: u64, len: u64, kind: LockKind) -> io::Result<bool> {
    let typ = match kind {
        LockKind::Shared => libc::F_RDLCK,
        LockKind::Exclusive => libc::F_WRLCK,
    };
    match set_lock(file, start, len, typ) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases this description's locks on `len` bytes of `file` from `start` (bytes it does
/// not hold are no error).
pub fn unlock(file: &File, start: u64, len: u64) -> io::Result<()> {
    set_lock(file, start, len, libc::F_UNLCK)
}

#[cfg(target_os = "linux")]
fn set_lock(file: &File, start: u64, len: u64, typ: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(start), Ok(len)) = (libc::off_t::try_from(start), libc::off_t::try_from(len)) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "lock range out of range",
        ));
    };
    // l_pid must be 0 for OFD locks; the rest of the struct is plain data.
    // SAFETY: flock is a C struct of integers, for which all-zero bytes are a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = typ as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = start;
    lock.l_len = len;
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and F_OFD_SETLK
    // reads the flock struct we pass by pointer during the call only.
    let rc = unsafe {
        libc::fcntl(
            file.as_raw_fd(),
            libc::F_OFD_SETLK,
            &lock as *const libc::flock,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn set_lock(_file: &File, _start: u64, _len: u64, _typ: libc::c_int) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "open-file-description locks are implemented for Linux only",
    ))
}

/// A shared, writable memory mapping of the first `words * 8` bytes of a file, seen as
/// 64-bit atomics: what several processes use to share a few words of state
/// (`<db>-shm`). Every access goes through the atomics, so concurrent writers in other
/// processes are no data race. The file must be at least that long while it is mapped:
/// a file another process truncates under a mapping turns the next access into SIGBUS,
/// as with any shared mapping (SQLite's `-shm` has the same rule).
pub struct SharedWords {
    ptr: std::ptr::NonNull<std::sync::atomic::AtomicU64>,
    words: usize,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics; it may be used
// and unmapped from any thread.
unsafe impl Send for SharedWords {}
// SAFETY: as above: `&SharedWords` only hands out `&[AtomicU64]`.
unsafe impl Sync for SharedWords {}

impl SharedWords {
    /// Maps the first `words * 8` bytes of `file` (opened for reading and writing, at
    /// least that long) shared with every other process mapping it.
    #[cfg(unix)]
    pub fn map(file: &File, words: usize) -> io::Result<SharedWords> {
        use std::os::fd::AsRawFd;
        let len = words
            .checked_mul(8)
            .filter(|&n| n > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad mapping size"))?;
        if file.metadata()?.len() < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than the mapping",
            ));
        }
        // SAFETY: a fresh mapping (address chosen by the kernel) of an open descriptor; it
        // aliases no Rust object. The descriptor may be closed afterwards.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast::<std::sync::atomic::AtomicU64>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(SharedWords { ptr, words })
    }

    /// Shared memory is Unix-only here.
    #[cfg(not(unix))]
    pub fn map(_file: &File, _words: usize) -> io::Result<SharedWords> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "shared mappings are implemented for Unix only",
        ))
    }

    /// The mapped words.
    pub fn words(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: the mapping is page-aligned (so aligned for AtomicU64), `words * 8` bytes
        // long, lives until `self` is dropped, and AtomicU64 permits shared mutation.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.words) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: unmaps exactly the mapping `map` made; no reference into it outlives
        // `self` (`words` borrows `self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.words * 8);
        }
    }
}

/// True when `file` lies on a network file system (NFS, SMB/CIFS, AFS, Ceph, 9p...),
/// where shared memory and byte-range locks between machines are not to be trusted.
#[cfg(target_os = "linux")]
pub fn is_network_fs(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: statfs is a C struct of integers: all-zero bytes are a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open while `file` is borrowed; fstatfs writes `st` only.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } == -1 {
        return Err(io::Error::last_os_error());
    }
    const NETWORK: [i64; 9] = [
        0x6969,      // NFS
        0x517B,      // SMB
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x5346_414F, // AFS
        0x00C3_6400, // Ceph
        0x0102_1997, // 9p (v9fs)
        0x6B41_4653, // AFS (kAFS)
        0x0BD0_0BD0, // Lustre
    ];
    #[allow(clippy::unnecessary_cast)]
    let kind = st.f_type as i64;
    Ok(NETWORK.contains(&kind))
}

/// Network file systems are not detected off Linux.
#[cfg(not(target_os = "linux"))]
pub fn is_network_fs(_file: &File) -> io::Result<bool> {
    Ok(false)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn two_descriptions() -> (tempfile_free::Dir, File, File) {
        let dir = tempfile_free::Dir::new();
        let path = dir.path.join("locks");
        let a = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        let b = File::options().read(true).write(true).open(&path).unwrap();
        (dir, a, b)
    }

    /// A temporary directory without a dev-dependency.
    mod tempfile_free {
        pub struct Dir {
            pub path: std::path::PathBuf,
        }
        impl Dir {
            pub fn new() -> Dir {
                let path = std::env::temp_dir().join(format!(
                    "obj-sys-{}-{:?}",
                    std::process::id(),
                    std::thread::current().id()
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir { path }
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    #[test]
    fn descriptions_in_one_process_conflict_as_processes_do() {
        let (_dir, a, b) = two_descriptions();
        assert!(try_lock(&a, 10, 1, LockKind::Exclusive).unwrap());
        assert!(!try_lock(&b, 10, 1, LockKind::Shared).unwrap());
        assert!(!try_lock(&b, 10, 1, LockKind::Exclusive).unwrap());
        // Other bytes are free.
        assert!(try_lock(&b, 11, 1, LockKind::Exclusive).unwrap());
        // Downgrading lets shared holders in, but still no exclusive one.
        assert!(try_lock(&a, 10, 1, LockKind::Shared).unwrap());
        assert!(try_lock(&b, 10, 1, LockKind::Shared).unwrap());
        assert!(!try_lock(&a, 10, 1, LockKind::Exclusive).unwrap());
        unlock(&b, 10, 1).unwrap();
        assert!(try_lock(&a, 10, 1, LockKind::Exclusive).unwrap());
        unlock(&a, 10, 1).unwrap();
        unlock(&a, 10, 1).unwrap(); // unlocking what is not held is no error
        assert!(try_lock(&b, 10, 1, LockKind::Exclusive).unwrap());
    }

    #[test]
    fn closing_another_descriptor_releases_nothing_but_closing_the_holder_does() {
        let (dir, a, b) = two_descriptions();
        assert!(try_lock(&a, 0, 4, LockKind::Exclusive).unwrap());
        // POSIX record locks would all go away when any descriptor of the file is closed.
        let other = File::open(dir.path.join("locks")).unwrap();
        drop(other);
        assert!(!try_lock(&b, 0, 4, LockKind::Shared).unwrap());
        drop(a);
        assert!(try_lock(&b, 0, 4, LockKind::Exclusive).unwrap());
    }

    #[test]
    fn the_kernel_releases_the_locks_of_a_killed_process() {
        let (_dir, a, b) = two_descriptions();
        // SAFETY: the child only calls async-signal-safe functions (fcntl, pause, _exit)
        // before it is killed; it never returns into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = try_lock(&a, 7, 1, LockKind::Exclusive).unwrap_or(false);
            // SAFETY: _exit and pause are async-signal-safe.
            unsafe {
                if !ok {
                    libc::_exit(1);
                }
                loop {
                    libc::pause();
                }
            }
        }
        drop(a); // the parent's copy of the description: the child's lock lives on in it
        let deadline = Instant::now() + Duration::from_secs(10);
        while try_lock(&b, 7, 1, LockKind::Shared).unwrap() {
            unlock(&b, 7, 1).unwrap();
            assert!(Instant::now() < deadline, "the child never took its lock");
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: pid is our child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        assert!(try_lock(&b, 7, 1, LockKind::Exclusive).unwrap());
    }

    #[test]
    fn two_mappings_of_one_file_share_their_words() {
        use std::sync::atomic::Ordering;
        let (_dir, a, b) = two_descriptions();
        a.set_len(4096).unwrap();
        let m1 = SharedWords::map(&a, 512).unwrap();
        let m2 = SharedWords::map(&b, 512).unwrap();
        m1.words()[7].store(0xdead_beef, Ordering::SeqCst);
        assert_eq!(m2.words()[7].load(Ordering::SeqCst), 0xdead_beef);
        assert_eq!(m2.words()[7].fetch_add(1, Ordering::SeqCst), 0xdead_beef);
        assert_eq!(m1.words()[7].load(Ordering::SeqCst), 0xdead_bef0);
        // A mapping longer than the file is refused, not left to fault.
        assert!(SharedWords::map(&a, 1024).is_err());
        assert!(!is_network_fs(&a).unwrap());
    }
}
