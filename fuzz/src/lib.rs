//! Helpers shared by the fuzz targets in `fuzz_targets/`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory of this process's own (in /dev/shm when there is one, so writing an input
/// per execution costs no disk I/O).
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("percept-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz scratch directory");
        dir
    })
}

/// Writes `data` to `name` in the scratch directory (for APIs that read files) and
/// returns its path.
pub fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    if std::fs::write(&path, data).is_err() {
        // Something removed the directory under us (a second `scripts/fuzz` cleaning up
        // once did, and the failed write was recorded as a crash): make it again.
        std::fs::create_dir_all(scratch_dir()).expect("create the fuzz scratch directory");
        std::fs::write(&path, data).expect("write the fuzz input");
    }
    path
}

/// For code that catches panics on purpose (percept-media guards symphonia's demuxers and
/// decoders with `catch_unwind` and reports bad input as an error): libfuzzer-sys's panic
/// hook would abort on those. This hook stays quiet and keeps the message; `run` aborts
/// (a finding) only when a panic escapes percept's own guard, printing that message.
pub fn run_catching_only_escaped_panics<R>(f: impl FnOnce() -> R) {
    use std::cell::RefCell;
    thread_local! {
        static LAST: RefCell<String> = const { RefCell::new(String::new()) };
    }
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        std::panic::set_hook(Box::new(|info| {
            let msg = info.to_string();
            LAST.with(|l| *l.borrow_mut() = msg);
        }));
    });
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        LAST.with(|l| eprintln!("panic escaped percept's guard: {}", l.borrow()));
        std::process::abort();
    }
}

/// Any single allocation above this is a finding. Every target's input is at most 64 KB,
/// so a request this large comes from a size the input declared and nobody checked, and it
/// fails outright on most machines, which aborts the process (no panic guard catches that;
/// issue 13's F1 and the MP4 sample tables were such). libFuzzer's own `-malloc_limit_mb`
/// needs a sanitizer's allocator hooks, which a `-s none` build lacks. Smaller requests are
/// left to `-rss_limit_mb`: symphonia sizes some metadata buffers from a u32 in the file
/// (up to 4 GiB) and fills them only as far as the file goes, so they stay virtual memory.
pub const MAX_ALLOC_BYTES: usize = 4 << 30;

struct LimitedAlloc;

unsafe impl std::alloc::GlobalAlloc for LimitedAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        too_large(layout.size());
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        too_large(layout.size());
        unsafe { std::alloc::System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        too_large(new);
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: LimitedAlloc = LimitedAlloc;

fn too_large(size: usize) {
    if size <= MAX_ALLOC_BYTES {
        return;
    }
    use std::io::Write;
    let mut buf = [0u8; 160];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(
        cur,
        "\n==percept-fuzz== allocation of {size} bytes, over the limit of {MAX_ALLOC_BYTES}\n"
    );
    let n = cur.position() as usize;
    let mut err = std::io::stderr();
    let _ = err.write_all(&buf[..n]);
    // Capturing allocates only small buffers, which pass the check above.
    let _ = writeln!(err, "{}", std::backtrace::Backtrace::force_capture());
    std::process::abort();
}
