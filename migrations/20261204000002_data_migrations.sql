-- Steps that SQL cannot express (folding emails to Unicode NFKC, say) run in the
-- application right after the migrations, wherever migrations run. Each records its name
-- here when done, so that it runs once rather than rescanning on every deploy.
CREATE TABLE data_migrations (
    name        VARCHAR(100) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    applied_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
