-- Login throttling is keyed by email and client address, so that a stranger's failures
-- for an email do not lock its owner out from elsewhere; a second table caps the failures
-- of one address across all emails (credential stuffing).
--
-- Rows of the per-email throttle cannot say where their failures came from, and expire
-- within 15 minutes anyway: they are dropped rather than guessed at.
DELETE FROM login_throttle;
ALTER TABLE login_throttle
    -- The address as the application keys it: an IPv4 address, an IPv6 /64 network, or ''
    -- when the host knows none.
    ADD COLUMN client_address VARCHAR(45) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT ''
        AFTER email,
    DROP PRIMARY KEY,
    ADD PRIMARY KEY (email, client_address);

CREATE TABLE login_address_throttle (
    client_address      VARCHAR(45) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    failures            INT UNSIGNED NOT NULL,
    window_started_at   DATETIME(6) NOT NULL,
    PRIMARY KEY (client_address),
    -- Housekeeping deletes rows whose window has passed, in bounded batches.
    KEY login_address_throttle_window_idx (window_started_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
