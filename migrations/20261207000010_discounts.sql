-- Discount codes, and what each order took off with one.
-- Runs unchanged on MariaDB 10.11 and MySQL 8.0 / Aurora MySQL 3.

-- `code` is stored upper-cased, so the unique key makes codes unique case-insensitively.
-- `value` is a whole percentage for `percent`, an amount in euros for `amount`.
-- `times_used` counts the orders holding a use: raised in the order's transaction under
-- this row's lock, lowered when such an order is cancelled or deleted.
CREATE TABLE discounts (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    code                VARCHAR(32) NOT NULL,
    kind                ENUM('percent', 'amount') NOT NULL,
    value               DECIMAL(12, 2) NOT NULL,
    min_subtotal        DECIMAL(12, 2) NULL,
    starts_at           DATETIME(6) NOT NULL,
    ends_at             DATETIME(6) NULL,
    usage_limit         INT UNSIGNED NULL,
    per_customer_limit  INT UNSIGNED NULL,
    times_used          INT UNSIGNED NOT NULL DEFAULT 0,
    active              BOOLEAN NOT NULL DEFAULT TRUE,
    created_at          DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at          DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY discounts_code_uq (code),
    KEY discounts_created_idx (created_at, id),
    CONSTRAINT discounts_within_limit CHECK (usage_limit IS NULL OR times_used <= usage_limit)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- An order keeps its own copy of the discount it used (code, kind, value, amount), so
-- deleting the discount changes no order. `discount_id` has no foreign key: it only says
-- which row to give the use back to, and a deleted discount has none to give back.
-- Existing orders had no discount: their subtotal is their total, which is also the default
-- for an order written without one.
ALTER TABLE orders
    ADD COLUMN subtotal DECIMAL(12, 2) NULL AFTER status,
    ADD COLUMN discount_id BIGINT UNSIGNED NULL AFTER subtotal,
    ADD COLUMN discount_code VARCHAR(32) NULL AFTER discount_id,
    ADD COLUMN discount_kind ENUM('percent', 'amount') NULL AFTER discount_code,
    ADD COLUMN discount_value DECIMAL(12, 2) NULL AFTER discount_kind,
    ADD COLUMN discount_amount DECIMAL(12, 2) NULL AFTER discount_value;
UPDATE orders SET subtotal = total;
ALTER TABLE orders
    MODIFY subtotal DECIMAL(12, 2) NOT NULL DEFAULT (total),
    ADD KEY orders_discount_user_idx (discount_id, user_id),
    ADD CONSTRAINT orders_total_after_discount
        CHECK (total = subtotal - COALESCE(discount_amount, 0));
