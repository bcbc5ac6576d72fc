-- Placing an order writes its lines before it takes its products' stock, so that the
-- product rows, which every buyer in a flash sale queues on, are locked only for the last
-- statement before the commit. A foreign key from a line to its product would lock the
-- product row (shared) as soon as the line is written, and two orders for the same product
-- would then deadlock upgrading it. Deleting a product clears its lines' product_id itself
-- (the rule the key's ON DELETE SET NULL used to apply); the index stays for that.
ALTER TABLE order_items DROP FOREIGN KEY order_items_product_fk;
