-- Stock holds expire: a pending order keeps its stock until expires_at, then the system
-- cancels it (lazily when it is read or paid, and by the scheduled sweep). The column keeps
-- the deadline after the order leaves pending; the API shows it only while pending.
ALTER TABLE orders ADD COLUMN expires_at DATETIME(6) NULL AFTER amount_paid;
-- Orders placed before holds existed get the default hold (30 minutes) from their creation.
UPDATE orders SET expires_at = created_at + INTERVAL 30 MINUTE;
ALTER TABLE orders
    MODIFY expires_at DATETIME(6) NOT NULL,
    -- The sweep's only query: pending orders whose deadline has passed, oldest first.
    ADD KEY orders_status_expires_idx (status, expires_at);

-- Housekeeping deletes throttle rows whose window has passed, in bounded batches.
ALTER TABLE login_throttle ADD KEY login_throttle_window_idx (window_started_at);
