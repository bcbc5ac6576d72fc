//! The shape of every concurrency test, and a way to stop one request at a chosen point.

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

/// Waits until this test's order is taking its stock, or `task` has ended without it.
pub async fn until_the_stock_is_being_taken<T>(
    pool: &sqlx::MySqlPool,
    task: &tokio::task::JoinHandle<T>,
) {
    while !task.is_finished() {
        // The statement that takes the stock, running while another transaction holds
        // a variant row, is waiting for it.
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST
             WHERE DB = DATABASE() AND INFO LIKE 'UPDATE variants SET stock = stock - CASE%'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
