-- Money records outlive the accounts and orders they concern. Deleting an account keeps its
-- orders as anonymous records (user_id NULL) instead of deleting them, and no payment can be
-- deleted along with its order: an order that has any payment cannot be deleted at all.
-- The application follows these rules itself; the keys make sure nothing else breaks them.
ALTER TABLE orders DROP FOREIGN KEY orders_user_fk;
ALTER TABLE orders MODIFY user_id BIGINT UNSIGNED NULL;
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id)
    REFERENCES users (id) ON DELETE SET NULL;

ALTER TABLE payments DROP FOREIGN KEY payments_order_fk;
ALTER TABLE payments ADD CONSTRAINT payments_order_fk FOREIGN KEY (order_id)
    REFERENCES orders (id) ON DELETE RESTRICT;
