-- Addresses and fulfilment: an address book per user, the shipping address an order keeps
-- as its own copy, its tracking number, and the history of every status it entered.

CREATE TABLE addresses (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id         BIGINT UNSIGNED NOT NULL,
    name            VARCHAR(100) NOT NULL,
    line1           VARCHAR(200) NOT NULL,
    line2           VARCHAR(200) NULL,
    postal_code     VARCHAR(20) NOT NULL,
    city            VARCHAR(100) NOT NULL,
    -- ISO 3166-1 alpha-2, upper-case.
    country         CHAR(2) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    phone           VARCHAR(30) NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY addresses_user_created_idx (user_id, created_at),
    -- The account's addresses go with it.
    CONSTRAINT addresses_user_fk FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The order's own copy: no reference to the address book, so deleting or changing an
-- address never changes an order. NULL for orders that ship nothing (digital goods).
ALTER TABLE orders
    ADD COLUMN ship_name        VARCHAR(100) NULL,
    ADD COLUMN ship_line1       VARCHAR(200) NULL,
    ADD COLUMN ship_line2       VARCHAR(200) NULL,
    ADD COLUMN ship_postal_code VARCHAR(20) NULL,
    ADD COLUMN ship_city        VARCHAR(100) NULL,
    ADD COLUMN ship_country     CHAR(2) CHARACTER SET ascii COLLATE ascii_general_ci NULL,
    ADD COLUMN ship_phone       VARCHAR(30) NULL,
    ADD COLUMN tracking_number  VARCHAR(100) NULL;

-- One row per status an order entered, written in the transaction that changed it, so the
-- history can never disagree with the order's status.
CREATE TABLE order_status_history (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    order_id    BIGINT UNSIGNED NOT NULL,
    status      ENUM('pending', 'paid', 'processing', 'shipped', 'delivered', 'cancelled') NOT NULL,
    actor       ENUM('customer', 'admin', 'system') NOT NULL,
    entered_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY order_status_history_order_idx (order_id, id),
    CONSTRAINT order_status_history_order_fk FOREIGN KEY (order_id)
        REFERENCES orders (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Orders placed before history was kept: their creation, and the status they have now if
-- they have moved on (who moved them is not known; the system stands in).
INSERT INTO order_status_history (order_id, status, actor, entered_at)
    SELECT id, 'pending', 'customer', created_at FROM orders;
INSERT INTO order_status_history (order_id, status, actor, entered_at)
    SELECT id, status, 'system', updated_at FROM orders WHERE status <> 'pending';
