-- Emails are compared exactly (after trimming and lower-casing in the application):
-- the default collation also ignores accents, which made zoë@… and zoe@… one account.
ALTER TABLE users
    MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE login_throttle
    MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
