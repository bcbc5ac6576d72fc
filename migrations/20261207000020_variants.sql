-- Variants: a product sells in one or more versions (size, colour), each with its own SKU,
-- price and stock. Stock moves to the variants; the product keeps `price` as its lowest
-- variant price, maintained in the transaction of every variant change, so that sorting by
-- price stays a walk of products_price_idx.

CREATE TABLE variants (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    product_id      BIGINT UNSIGNED NOT NULL,
    -- Unique across the shop case-insensitively, kept as given.
    sku             VARCHAR(64) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    -- Canonical JSON (keys sorted, compact), so that equal objects are equal text.
    options         VARCHAR(2000) NOT NULL DEFAULT '{}',
    -- Options are compared as objects and unique per product; the text is too long to
    -- index, its digest is not.
    options_key     CHAR(64) CHARACTER SET ascii COLLATE ascii_bin
                    AS (SHA2(options, 256)) STORED,
    price           DECIMAL(12, 2) NOT NULL,
    stock           INT UNSIGNED NOT NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY variants_sku_uq (sku),
    UNIQUE KEY variants_product_options_uq (product_id, options_key),
    -- The product filters ask whether one variant has a price in range and stock, per
    -- product: answered from this index alone.
    KEY variants_product_price_stock_idx (product_id, price, stock),
    CONSTRAINT variants_price_positive CHECK (price > 0),
    CONSTRAINT variants_product_fk FOREIGN KEY (product_id)
        REFERENCES products (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Every product gets its default variant, carrying its price and stock.
INSERT INTO variants (product_id, sku, options, price, stock, created_at, updated_at)
    SELECT id, CONCAT('P', id), '{}', price, stock, created_at, updated_at FROM products
    ORDER BY id;

ALTER TABLE products DROP COLUMN stock;

-- Cart lines name a variant; product_id stays beside it, so that a product's deletion
-- finds its lines and the product route still addresses them.
ALTER TABLE cart_items ADD COLUMN variant_id BIGINT UNSIGNED NULL AFTER product_id;
UPDATE cart_items c JOIN variants v ON v.product_id = c.product_id SET c.variant_id = v.id;
ALTER TABLE cart_items
    MODIFY variant_id BIGINT UNSIGNED NOT NULL,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (user_id, variant_id),
    ADD KEY cart_items_variant_idx (variant_id),
    ADD CONSTRAINT cart_items_variant_fk FOREIGN KEY (variant_id)
        REFERENCES variants (id) ON DELETE CASCADE;

-- Order lines keep the variant as bought: its SKU and options beside name and price. Like
-- product_id, variant_id has no foreign key (it would lock the variant row as the line is
-- written) and is cleared by the variant's deletion. Lines of products deleted before
-- variants existed have no SKU to keep.
ALTER TABLE order_items
    ADD COLUMN variant_id BIGINT UNSIGNED NULL AFTER product_id,
    ADD COLUMN sku VARCHAR(64) CHARACTER SET ascii COLLATE ascii_general_ci NULL AFTER product_name,
    ADD COLUMN options VARCHAR(2000) NOT NULL DEFAULT '{}' AFTER sku,
    ADD KEY order_items_variant_idx (variant_id);
UPDATE order_items oi JOIN variants v ON v.product_id = oi.product_id
    SET oi.variant_id = v.id, oi.sku = v.sku;
