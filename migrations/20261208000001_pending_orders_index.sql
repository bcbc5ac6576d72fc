-- An order counts its customer's pending orders whose hold has not run out, under the
-- lock on the customer's row (shared/domain/src/stock.rs). Without this index the count
-- walked every order the customer ever placed and read each row; with it the count reads
-- only the index entries of holds still running.
ALTER TABLE orders ADD KEY orders_user_status_expires_idx (user_id, status, expires_at);
