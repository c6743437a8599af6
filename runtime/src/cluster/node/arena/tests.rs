//! The arena's tests: the free list, a value written through a view, lent blocks, a view of
//! the wrong file.

use super::*;

#[test]
fn free_ranges_merge_and_first_fit() {
    let mut free = FreeList::default();
    free.give(0, 100 * PAGE);
    let a = free.take(10 * PAGE).unwrap();
    let b = free.take(10 * PAGE).unwrap();
    let c = free.take(10 * PAGE).unwrap();
    assert_eq!((a, b, c), (0, 10 * PAGE, 20 * PAGE));
    free.give(b, 10 * PAGE);
    // A smaller block reuses the hole; a larger one goes after `c`.
    assert_eq!(free.take(5 * PAGE), Some(10 * PAGE));
    assert_eq!(free.take(20 * PAGE), Some(30 * PAGE));
    free.give(10 * PAGE, 5 * PAGE);
    free.give(a, 10 * PAGE);
    free.give(c, 10 * PAGE);
    free.give(30 * PAGE, 20 * PAGE);
    assert_eq!(free.ranges.len(), 1, "{:?}", free.ranges);
    assert_eq!(free.free_bytes(), 100 * PAGE);
    assert_eq!(free.take(101 * PAGE), None);
}

#[cfg(target_os = "linux")]
#[test]
fn a_value_written_through_a_view_is_read_from_the_block() {
    let arena = Arena::create(64 * PAGE).unwrap();
    let view = ArenaView::attach(arena.location()).unwrap();
    let block = arena.alloc(3 * PAGE + 5).unwrap();
    // SAFETY: the block was just allocated for this write and is not read meanwhile.
    let dst = unsafe { view.block_mut(block.offset(), block.len() as usize) }.unwrap();
    for (i, b) in dst.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    assert!(block
        .bytes()
        .iter()
        .enumerate()
        .all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(arena.free_bytes(), 60 * PAGE);
    drop(block);
    assert_eq!(arena.free_bytes(), 64 * PAGE);
    assert!(arena.alloc(65 * PAGE).is_none(), "larger than the arena");
}

#[cfg(target_os = "linux")]
#[test]
fn a_lent_block_is_freed_when_taken_back_not_when_its_writer_leaves() {
    let arena = Arena::create(16 * PAGE).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut lent = Lent::default();
        assert!(lent.lend(1, arena.alloc(PAGE).unwrap()).is_none());
        assert!(lent.lend(2, arena.alloc(PAGE).unwrap()).is_none());
        drop(lent.take(&1));
        assert_eq!(arena.free_bytes(), 15 * PAGE);
        // The writer of block 2 left without sealing it: it stays allocated for now.
        drop(lent);
        assert_eq!(arena.free_bytes(), 15 * PAGE);
    });
}

#[cfg(target_os = "linux")]
#[test]
fn a_view_of_another_file_is_refused() {
    let arena = Arena::create(16 * PAGE).unwrap();
    let mut wrong = arena.location().clone();
    wrong.inode += 1;
    assert!(ArenaView::attach(&wrong).is_err());
    wrong = arena.location().clone();
    wrong.boot_id = "another-host".into();
    assert!(ArenaView::attach(&wrong).is_err());
}
