-- The order an `order.*` event copies: deleting an account takes the person (owner, name,
-- address) out of those copies too, through this index rather than a scan of every event.
ALTER TABLE events
    ADD COLUMN order_id BIGINT UNSIGNED NULL,
    ADD KEY events_order_idx (order_id);
