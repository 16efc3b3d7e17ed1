//! The global allocator: glibc's, with one size of block kept per thread. hyper reads every
//! request into a fresh 8 KiB buffer (the last one is still held by the request it read), and
//! frees it when the request is done. That size is past glibc's per-thread cache, so each
//! allocation and each free took an arena's lock, contended by the other threads sharing the
//! two arenas (`memory.rs`): 1.19 futex calls per survey answer on the tokio workers, and a
//! consolidation of the arena's small free chunks before every such allocation
//! (`docs/performance.md`, sessions 20 and 21). Here a thread keeps up to [`KEPT`] freed blocks
//! of exactly that size and hands them out again without a lock.
//!
//! Every kept block came from glibc with the same size, so glibc may take any of them back
//! (`realloc`, `free`), whichever path frees it. A thread's kept blocks go back to glibc when
//! the thread ends.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::RefCell,
    ptr,
};

/// The size kept: hyper's read buffer (`INIT_BUFFER_SIZE`).
const BLOCK: usize = 8192;

/// Blocks kept per thread at most: 64 KiB. A request's buffer is usually allocated and freed by
/// one connection task, so a thread's frees match its allocations; this absorbs the skew when
/// tasks move between workers.
const KEPT: usize = 8;

/// glibc's `malloc` aligns every block to 16 bytes, so a kept block suits any request with at
/// most that alignment.
const MALLOC_ALIGN: usize = 16;

/// The allocator: `#[global_allocator]` in `lib.rs`.
pub struct BlockCachingAllocator;

struct KeptBlocks {
    blocks: [*mut u8; KEPT],
    len: usize,
}

impl KeptBlocks {
    fn take(&mut self) -> Option<*mut u8> {
        self.len = self.len.checked_sub(1)?;
        Some(self.blocks[self.len])
    }

    /// Keeps `block` if there is room; false if the caller must free it.
    fn keep(&mut self, block: *mut u8) -> bool {
        if self.len == KEPT {
            return false;
        }
        self.blocks[self.len] = block;
        self.len += 1;
        true
    }
}

impl Drop for KeptBlocks {
    fn drop(&mut self) {
        while let Some(block) = self.take() {
            // SAFETY: every kept block was allocated by System with the block layout.
            unsafe { System.dealloc(block, block_layout()) }
        }
    }
}

thread_local! {
    // const-initialised: no allocation on first use, so the allocator may touch it.
    static THREAD_BLOCKS: RefCell<KeptBlocks> = const { RefCell::new(KeptBlocks { blocks: [ptr::null_mut(); KEPT], len: 0 }) };
}

fn block_layout() -> Layout {
    Layout::from_size_align(BLOCK, 1).expect("a valid layout")
}

fn is_block(layout: Layout) -> bool {
    layout.size() == BLOCK && layout.align() <= MALLOC_ALIGN
}

/// A kept block of this thread, if it has one. `None` while the thread's store is being set up
/// or torn down, or in use further up the stack.
fn take_kept() -> Option<*mut u8> {
    THREAD_BLOCKS.try_with(|kept| kept.try_borrow_mut().ok()?.take()).ok().flatten()
}

fn keep(block: *mut u8) -> bool {
    THREAD_BLOCKS.try_with(|kept| kept.try_borrow_mut().is_ok_and(|mut kept| kept.keep(block))).unwrap_or(false)
}

// SAFETY: every path hands out either a block from `System` or a kept block that `System`
// allocated with a layout of the same size and an alignment that covers the request's.
unsafe impl GlobalAlloc for BlockCachingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_block(layout)
            && let Some(block) = take_kept()
        {
            return block;
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if is_block(layout) && keep(block) {
            return;
        }
        // SAFETY: the caller's contract, passed on; kept blocks are System's too.
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on (calloc maps large zeroed blocks lazily).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on: a kept block handed out is System's
        // allocation of the same size, so System may grow or shrink it in place.
        unsafe { System.realloc(block, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// Runs `test` on a thread of its own, which starts with no kept blocks.
    fn on_a_new_thread(test: impl FnOnce(BlockCachingAllocator) + Send + 'static) {
        std::thread::spawn(|| test(BlockCachingAllocator)).join().unwrap();
    }

    fn kept_here() -> usize {
        THREAD_BLOCKS.with(|k| k.borrow().len)
    }

    #[test]
    fn a_freed_read_buffer_is_handed_out_again_by_its_thread() {
        on_a_new_thread(|a| unsafe {
            let first = a.alloc(layout(BLOCK, 1));
            first.write_bytes(7, BLOCK);
            a.dealloc(first, layout(BLOCK, 1));
            let again = a.alloc(layout(BLOCK, 8));
            assert_eq!(again, first, "the kept block comes back");
            assert_eq!(again as usize % MALLOC_ALIGN, 0);
            a.dealloc(again, layout(BLOCK, 8));
        });
    }

    #[test]
    fn a_thread_keeps_a_bounded_number_of_blocks_and_other_sizes_none() {
        on_a_new_thread(|a| unsafe {
            // Other sizes first, while there is room: a full store would refuse them anyway.
            let other = a.alloc(layout(BLOCK + 1, 1));
            a.dealloc(other, layout(BLOCK + 1, 1));
            let wide = a.alloc(layout(BLOCK, 64));
            assert_eq!(wide as usize % 64, 0, "a wider alignment than malloc's is System's to serve");
            a.dealloc(wide, layout(BLOCK, 64));
            assert_eq!(kept_here(), 0, "only blocks of the kept size and alignment are kept");
            let blocks: Vec<*mut u8> = (0..KEPT + 3).map(|_| a.alloc(layout(BLOCK, 1))).collect();
            for b in &blocks {
                a.dealloc(*b, layout(BLOCK, 1));
            }
            assert_eq!(kept_here(), KEPT, "the rest went back to glibc");
        });
    }

    #[test]
    fn a_kept_block_grows_and_shrinks_as_any_allocation() {
        on_a_new_thread(|a| unsafe {
            let b = a.alloc(layout(BLOCK, 1));
            a.dealloc(b, layout(BLOCK, 1));
            let b = a.alloc(layout(BLOCK, 1));
            b.write_bytes(3, BLOCK);
            let grown = a.realloc(b, layout(BLOCK, 1), 3 * BLOCK);
            assert!((0..BLOCK).all(|i| *grown.add(i) == 3), "realloc keeps the contents");
            let shrunk = a.realloc(grown, layout(3 * BLOCK, 1), BLOCK);
            assert_eq!(*shrunk.add(BLOCK - 1), 3);
            a.dealloc(shrunk, layout(BLOCK, 1));
        });
    }
}
