//! A small worker pool for the checksum's walks and reads: each thread takes the next
//! item as it finishes one, so a few slow items do not hold up an even split.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `f` on every item on up to `threads` threads and returns the results in the
/// order of `items`. The first error stops the other threads from taking more items
/// and is returned; a panic in `f` is passed on to the caller.
pub(super) fn parallel_in_order<T, R, E>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    if threads <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let at = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(at) else {
                            return Ok(mine);
                        };
                        match f(item) {
                            Ok(result) => mine.push((at, result)),
                            Err(e) => {
                                // Stop the others early; the first error is reported.
                                next.store(items.len(), Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for worker in workers {
            match worker.join() {
                Ok(part) => all.extend(part?),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(all)
    })?;
    done.sort_by_key(|(at, _)| *at);
    Ok(done.into_iter().map(|(_, result)| result).collect())
}

#[cfg(test)]
mod tests {
    use super::parallel_in_order;

    #[test]
    fn results_come_back_in_input_order() {
        let items: Vec<u32> = (0..200).collect();
        let doubled = parallel_in_order(&items, 4, |n| Ok::<_, ()>(n * 2)).unwrap();
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn an_error_is_returned() {
        let items: Vec<u32> = (0..200).collect();
        for threads in [1, 4] {
            let result =
                parallel_in_order(
                    &items,
                    threads,
                    |n| {
                        if *n == 150 { Err(*n) } else { Ok(*n) }
                    },
                );
            assert_eq!(result, Err(150));
        }
    }

    #[test]
    fn no_items_give_no_results() {
        let items: Vec<u32> = Vec::new();
        let out = parallel_in_order(&items, 4, |n| Ok::<_, ()>(*n)).unwrap();
        assert!(out.is_empty());
    }
}
