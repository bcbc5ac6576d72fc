//! Catalogue rows written directly, as the schema holds them: a product sells through its
//! variants, which hold the stock, and keeps its lowest variant price.

use sqlx::MySqlPool;

/// A product and its default variant (options `{}`, SKU made from the product id, as the
/// API makes it); `price` is a decimal literal such as `"4.10"`.
pub async fn insert_product(pool: &MySqlPool, name: &str, price: &str, stock: u32) -> u64 {
    let id = sqlx::query("INSERT INTO products (name, price) VALUES (?, ?)")
        .bind(name)
        .bind(price)
        .execute(pool)
        .await
        .expect("insert test product")
        .last_insert_id();
    insert_variant(pool, id, &format!("P{id}"), "{}", price, stock).await;
    id
}

/// A variant of `product_id`; the product's price becomes its lowest variant price.
pub async fn insert_variant(
    pool: &MySqlPool,
    product_id: u64,
    sku: &str,
    options: &str,
    price: &str,
    stock: u32,
) -> u64 {
    let id = sqlx::query(
        "INSERT INTO variants (product_id, sku, options, price, stock) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(product_id)
    .bind(sku)
    .bind(options)
    .bind(price)
    .bind(stock)
    .execute(pool)
    .await
    .expect("insert test variant")
    .last_insert_id();
    sqlx::query(
        "UPDATE products SET price = (SELECT MIN(price) FROM variants WHERE product_id = ?)
         WHERE id = ?",
    )
    .bind(product_id)
    .bind(product_id)
    .execute(pool)
    .await
    .expect("keep the lowest price");
    id
}

/// A product's stock: the sum of its variants'.
pub async fn stock_of(pool: &MySqlPool, product_id: u64) -> u32 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(stock), 0) AS UNSIGNED) FROM variants WHERE product_id = ?",
    )
    .bind(product_id)
    .fetch_one(pool)
    .await
    .map(|stock: u64| stock as u32)
    .expect("read stock")
}

/// Sets the stock of a one-variant product, as `PUT /products/{id}` would.
pub async fn set_stock(pool: &MySqlPool, product_id: u64, stock: u32) {
    sqlx::query("UPDATE variants SET stock = ? WHERE product_id = ?")
        .bind(stock)
        .bind(product_id)
        .execute(pool)
        .await
        .expect("set stock");
}
