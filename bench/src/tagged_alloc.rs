//! A global allocator that counts live bytes per tag (the side of a benchmark that allocated
//! them: [`OTHER`], [`CLIENT`], [`SERVER`]), for the benchmarks that report heap per job in
//! flight. A benchmark installs it with `#[global_allocator]` and tags each runtime's threads
//! with [`tag_thread`] (in `on_thread_start`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

/// The tag of allocations made on no tagged thread.
pub const OTHER: u8 = 0;
/// The tag of the client side's threads.
pub const CLIENT: u8 = 1;
/// The tag of the server side's threads.
pub const SERVER: u8 = 2;

thread_local! {
    static TAG: Cell<u8> = const { Cell::new(0) };
}

static LIVE: [AtomicIsize; 3] = [const { AtomicIsize::new(0) }; 3];
static PEAK: [AtomicIsize; 3] = [const { AtomicIsize::new(0) }; 3];

/// Each block gets a header (at least 16 bytes, a multiple of its alignment) whose last
/// byte holds the tag of the thread that allocated it, so a free on another thread is
/// charged to the right side.
pub struct Tagged;

fn header(layout: Layout) -> usize {
    layout.align().max(16)
}

fn charge(tag: u8, bytes: isize) {
    let i = usize::from(tag.min(2));
    let now = LIVE[i].fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK[i].fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Tagged {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let h = header(layout);
        let Some(Ok(full)) = layout
            .size()
            .checked_add(h)
            .map(|size| Layout::from_size_align(size, layout.align().max(16)))
        else {
            return std::ptr::null_mut();
        };
        // SAFETY: `full` has a non-zero size.
        let base = unsafe { System.alloc(full) };
        if base.is_null() {
            return base;
        }
        let tag = TAG.try_with(Cell::get).unwrap_or(0);
        // SAFETY: `base` points to `size + h` bytes; the tag byte is inside the header.
        unsafe {
            base.add(h - 1).write(tag);
        }
        charge(tag, layout.size() as isize);
        // SAFETY: `h <= size + h`.
        unsafe { base.add(h) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let h = header(layout);
        // SAFETY: `ptr` came from `alloc` with the same layout, so the header precedes it.
        let (base, tag) = unsafe { (ptr.sub(h), ptr.sub(1).read()) };
        charge(tag, -(layout.size() as isize));
        // SAFETY: the layout `alloc` used for `base`.
        unsafe {
            System.dealloc(
                base,
                Layout::from_size_align_unchecked(layout.size() + h, layout.align().max(16)),
            )
        }
    }
}

/// Bytes live now under `tag`.
pub fn live(tag: u8) -> isize {
    LIVE[usize::from(tag)].load(Ordering::Relaxed)
}

/// Restarts the peak of `tag` from what is live now.
pub fn reset_peak(tag: u8) {
    PEAK[usize::from(tag)].store(live(tag), Ordering::Relaxed);
}

/// The most bytes live under `tag` since the last [`reset_peak`].
pub fn peak(tag: u8) -> isize {
    PEAK[usize::from(tag)].load(Ordering::Relaxed)
}

/// Charges the allocations of the calling thread to `tag` from now on.
pub fn tag_thread(tag: u8) {
    TAG.with(|t| t.set(tag));
}
