//! The shape of every concurrency test.

/// Runs `n` copies of a task at once (each on its own tokio task) and returns their
/// results in order: the shape of every concurrency test.
pub async fn in_parallel<T, Fut>(n: usize, task: impl Fn(usize) -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(task(i))).collect();
    let mut results = Vec::with_capacity(n);
    for handle in handles {
        results.push(handle.await.expect("a parallel task panicked"));
    }
    results
}
