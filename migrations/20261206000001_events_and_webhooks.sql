-- Events (a transactional outbox) and webhooks.
-- Runs unchanged on MariaDB 10.11 and MySQL 8.0 / Aurora MySQL 3. JSON is kept as MEDIUMTEXT:
-- a JSON column comes back to the driver as bytes on MariaDB.

-- Written in the transaction of the change it records, so it exists exactly when the change
-- does. `seq` is the order of writing. `id`, the public number, is given by the publisher
-- (one at a time) to committed rows only: AUTO_INCREMENT values are taken at insert, not
-- at commit, so a reader following them could pass a smaller one that commits later.
CREATE TABLE events (
    seq             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    id              BIGINT UNSIGNED NULL,
    type            VARCHAR(40) NOT NULL,
    data            MEDIUMTEXT NOT NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    published_at    DATETIME(6) NULL,
    PRIMARY KEY (seq),
    -- The feed walks it; its NULL entries, in seq order, are the rows still to publish.
    UNIQUE KEY events_id_uq (id),
    KEY events_type_id_idx (type, id),
    KEY events_created_idx (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The publisher's counter: its row lock makes publishing serial, and it holds the last
-- public id handed out.
CREATE TABLE event_publisher (
    id              TINYINT UNSIGNED NOT NULL,
    last_id         BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;
INSERT INTO event_publisher (id, last_id) VALUES (1, 0);

CREATE TABLE webhook_endpoints (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    url             VARCHAR(2000) NOT NULL,
    description     VARCHAR(500) NULL,
    -- The signing key, encrypted (AES-256-GCM) under a key that is not in the database.
    secret_sealed   VARCHAR(255) NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason VARCHAR(500) NULL,
    -- The first failed attempt since the last success; three days of it disables the endpoint.
    failing_since   DATETIME(6) NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The event types an endpoint receives: a type, or '*' for all.
CREATE TABLE webhook_subscriptions (
    endpoint_id     BIGINT UNSIGNED NOT NULL,
    event_type      VARCHAR(40) NOT NULL,
    PRIMARY KEY (endpoint_id, event_type),
    CONSTRAINT webhook_subscriptions_endpoint_fk FOREIGN KEY (endpoint_id)
        REFERENCES webhook_endpoints (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One per event and endpoint. The database is the source of truth: a queue message only
-- says "attempt delivery N now", and a lease (lease, leased_until) keeps a delivery from
-- being attempted twice at once while still coming back if its worker dies.
CREATE TABLE webhook_deliveries (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    endpoint_id     BIGINT UNSIGNED NOT NULL,
    event_seq       BIGINT UNSIGNED NOT NULL,
    status          ENUM('pending', 'succeeded', 'failed') NOT NULL DEFAULT 'pending',
    -- Scheduled attempts made so far; the retry schedule follows it.
    attempts        INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6) NULL,
    -- An attempt asked for by an admin: it does not advance the schedule.
    manual          BOOLEAN NOT NULL DEFAULT FALSE,
    lease           BIGINT UNSIGNED NULL,
    leased_until    DATETIME(6) NULL,
    created_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    UNIQUE KEY webhook_deliveries_event_uq (endpoint_id, event_seq),
    -- An endpoint's deliveries, newest first (InnoDB appends id to every key).
    KEY webhook_deliveries_endpoint_idx (endpoint_id),
    -- An endpoint's pending deliveries in order: the next to send, and the one in flight.
    KEY webhook_deliveries_pending_idx (endpoint_id, status),
    KEY webhook_deliveries_due_idx (status, next_attempt_at),
    KEY webhook_deliveries_created_idx (created_at),
    KEY webhook_deliveries_event_idx (event_seq),
    CONSTRAINT webhook_deliveries_endpoint_fk FOREIGN KEY (endpoint_id)
        REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    -- An event is purged only after its deliveries.
    CONSTRAINT webhook_deliveries_event_fk FOREIGN KEY (event_seq)
        REFERENCES events (seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE webhook_attempts (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    delivery_id     BIGINT UNSIGNED NOT NULL,
    at              DATETIME(6) NOT NULL,
    status_code     SMALLINT UNSIGNED NULL,
    error           VARCHAR(500) NULL,
    duration_ms     INT UNSIGNED NOT NULL,
    PRIMARY KEY (id),
    KEY webhook_attempts_delivery_idx (delivery_id),
    KEY webhook_attempts_at_idx (at),
    CONSTRAINT webhook_attempts_delivery_fk FOREIGN KEY (delivery_id)
        REFERENCES webhook_deliveries (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
