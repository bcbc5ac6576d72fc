-- The whole schema of the shop API.
-- Runs unchanged on MariaDB 10.11 and MySQL 8.0 / Aurora MySQL 3.
-- Timestamps are DATETIME(6) in UTC (the pool pins the session time zone to +00:00):
-- TIMESTAMP would stop in 2038, and microseconds keep keyset pages on created_at stable.
-- Money is DECIMAL(12,2): 99,999,999.99 at most, exact.

CREATE TABLE users (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name            VARCHAR(100) NOT NULL,
    -- Stored trimmed and lower-cased; the unique key is the whole of "one account per email".
    email           VARCHAR(254) NOT NULL,
    password_hash   VARCHAR(255) NOT NULL,
    role            ENUM('customer', 'admin') NOT NULL DEFAULT 'customer',
    -- Tokens carry the version they were issued under; bumping it revokes every older token.
    token_version   INT UNSIGNED NOT NULL DEFAULT 0,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY users_email_uq (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE categories (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name            VARCHAR(100) NOT NULL,
    description     VARCHAR(2000) NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- Case-insensitive collation: "Books" and "books" are the same category.
    UNIQUE KEY categories_name_uq (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE products (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name            VARCHAR(200) NOT NULL,
    description     TEXT NULL,
    price           DECIMAL(12, 2) NOT NULL,
    stock           INT UNSIGNED NOT NULL,
    category_id     BIGINT UNSIGNED NULL,
    -- Review aggregates, kept in the same transaction as every review insert/delete so that
    -- listing pages never aggregate the reviews table.
    review_count    INT UNSIGNED NOT NULL DEFAULT 0,
    rating_sum      INT UNSIGNED NOT NULL DEFAULT 0,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    -- Keyset pages: InnoDB appends the primary key to every secondary index,
    -- so each of these is really (column, id), the exact order of a page walk.
    KEY products_created_at_idx (created_at),
    KEY products_price_idx (price),
    KEY products_name_idx (name),
    KEY products_category_created_idx (category_id, created_at),
    CONSTRAINT products_price_positive CHECK (price > 0),
    -- Deleting a category leaves its products uncategorised.
    CONSTRAINT products_category_fk FOREIGN KEY (category_id)
        REFERENCES categories (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE cart_items (
    user_id         BIGINT UNSIGNED NOT NULL,
    product_id      BIGINT UNSIGNED NOT NULL,
    quantity        INT UNSIGNED NOT NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (user_id, product_id),
    KEY cart_items_product_idx (product_id),
    CONSTRAINT cart_items_user_fk FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    -- A product that leaves the catalogue leaves every cart.
    CONSTRAINT cart_items_product_fk FOREIGN KEY (product_id)
        REFERENCES products (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE orders (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id         BIGINT UNSIGNED NOT NULL,
    status          ENUM('pending', 'paid', 'processing', 'shipped', 'delivered', 'cancelled')
                    NOT NULL DEFAULT 'pending',
    total           DECIMAL(12, 2) NOT NULL,
    amount_paid     DECIMAL(12, 2) NOT NULL DEFAULT 0,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY orders_user_created_idx (user_id, created_at),
    KEY orders_user_status_created_idx (user_id, status, created_at),
    CONSTRAINT orders_paid_within_total CHECK (amount_paid >= 0 AND amount_paid <= total),
    CONSTRAINT orders_user_fk FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE order_items (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    order_id        BIGINT UNSIGNED NOT NULL,
    -- NULL once the product is deleted; the line keeps its name and price as bought.
    product_id      BIGINT UNSIGNED NULL,
    product_name    VARCHAR(200) NOT NULL,
    unit_price      DECIMAL(12, 2) NOT NULL,
    quantity        INT UNSIGNED NOT NULL,
    line_total      DECIMAL(12, 2) NOT NULL,
    PRIMARY KEY (id),
    KEY order_items_order_idx (order_id),
    KEY order_items_product_idx (product_id),
    CONSTRAINT order_items_order_fk FOREIGN KEY (order_id)
        REFERENCES orders (id) ON DELETE CASCADE,
    CONSTRAINT order_items_product_fk FOREIGN KEY (product_id)
        REFERENCES products (id) ON DELETE SET NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE payments (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    order_id        BIGINT UNSIGNED NOT NULL,
    amount          DECIMAL(12, 2) NOT NULL,
    method          ENUM('card', 'paypal', 'bank_transfer') NOT NULL,
    status          ENUM('completed', 'refunded') NOT NULL DEFAULT 'completed',
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    KEY payments_order_created_idx (order_id, created_at),
    CONSTRAINT payments_amount_positive CHECK (amount > 0),
    CONSTRAINT payments_order_fk FOREIGN KEY (order_id)
        REFERENCES orders (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE reviews (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    product_id          BIGINT UNSIGNED NOT NULL,
    user_id             BIGINT UNSIGNED NOT NULL,
    rating              TINYINT UNSIGNED NOT NULL,
    comment             VARCHAR(2000) NULL,
    verified_purchase   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY reviews_user_product_uq (user_id, product_id),
    KEY reviews_product_created_idx (product_id, created_at),
    CONSTRAINT reviews_rating_range CHECK (rating BETWEEN 1 AND 5),
    CONSTRAINT reviews_product_fk FOREIGN KEY (product_id)
        REFERENCES products (id) ON DELETE CASCADE,
    CONSTRAINT reviews_user_fk FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Failed logins per email (known or not, so throttling reveals nothing about which exist).
-- A fixed window: it opens at the first failure and lasts 15 minutes.
CREATE TABLE login_throttle (
    email               VARCHAR(254) NOT NULL,
    failures            INT UNSIGNED NOT NULL,
    window_started_at   DATETIME(6) NOT NULL,
    PRIMARY KEY (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- First responses of POST /orders, POST /payments and checkout, replayed on retry.
-- The row is inserted in the same transaction as the resource, so a concurrent duplicate
-- waits on its primary key and then replays instead of creating a second resource.
CREATE TABLE idempotency_keys (
    user_id             BIGINT UNSIGNED NOT NULL,
    -- Keys are compared byte for byte; never read back, so the binary collation is safe here.
    idempotency_key     VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    route               VARCHAR(100) NOT NULL,
    request_hash        CHAR(64) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    response_status     SMALLINT UNSIGNED NOT NULL,
    response_location   VARCHAR(255) NULL,
    response_body       MEDIUMTEXT NOT NULL,
    created_at          DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (user_id, idempotency_key),
    KEY idempotency_keys_created_idx (created_at),
    CONSTRAINT idempotency_keys_user_fk FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
