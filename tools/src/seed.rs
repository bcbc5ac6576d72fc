//! Sample data for local runs: a few categories and products, loaded once, and the reset
//! that puts a local database back to exactly that.

use sqlx::MySqlPool;

const CATEGORIES: &[(&str, &str)] = &[
    ("Books", "Printed and bound"),
    ("Kitchen", "Cook, bake, brew"),
    ("Garden", "Outdoor living"),
];

/// (name, description, price, stock, category index)
const PRODUCTS: &[(&str, &str, &str, u32, usize)] = &[
    (
        "The Rust Programming Language",
        "The classic introduction to Rust",
        "39.90",
        25,
        0,
    ),
    (
        "Zero To Production In Rust",
        "Backend development in Rust",
        "44.00",
        12,
        0,
    ),
    ("Cast Iron Skillet", "26 cm, pre-seasoned", "34.95", 8, 1),
    (
        "Pour-Over Coffee Set",
        "Dripper, filters and carafe",
        "27.50",
        0,
        1,
    ),
    ("Chef's Knife", "20 cm, stainless steel", "59.00", 15, 1),
    ("Watering Can", "5 litres, galvanised", "19.99", 30, 2),
    ("Pruning Shears", "Bypass blades", "24.90", 18, 2),
    (
        "Gift Card",
        "Spend it on anything",
        "25.00",
        1000,
        usize::MAX,
    ),
];

/// (code, kind, value): codes a customer can try at checkout.
const DISCOUNTS: &[(&str, &str, &str)] = &[("WELCOME10", "percent", "10")];
/// Products sold in several versions: (name, description, category index, variants as
/// (SKU, options as canonical JSON, price, stock)).
type Sized = (
    &'static str,
    &'static str,
    usize,
    &'static [(&'static str, &'static str, &'static str, u32)],
);
const SIZED: &[Sized] = &[
    (
        "Gardening Gloves",
        "Goatskin, lined",
        2,
        &[
            ("GLOVES-S", r#"{"size":"S"}"#, "14.90", 6),
            ("GLOVES-M", r#"{"size":"M"}"#, "14.90", 10),
            ("GLOVES-L", r#"{"size":"L"}"#, "15.90", 0),
        ],
    ),
    (
        "Linen Apron",
        "Washed linen, two pockets",
        1,
        &[
            ("APRON-NATURAL", r#"{"colour":"natural"}"#, "29.00", 9),
            ("APRON-CHARCOAL", r#"{"colour":"charcoal"}"#, "32.00", 4),
        ],
    ),
];

/// What [`sample_data`] found and did.
pub enum Seeded {
    /// The catalogue was empty: the sample categories and products are in it now.
    Loaded {
        categories: usize,
        products: usize,
        discounts: usize,
    },
    /// The catalogue already had products: nothing was changed.
    Kept { categories: i64, products: i64 },
}

/// Loads the sample data unless the catalogue already has products.
pub async fn sample_data(pool: &MySqlPool) -> Result<Seeded, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products FOR UPDATE")
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        let categories: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM categories")
            .fetch_one(&mut *tx)
            .await?;
        return Ok(Seeded::Kept {
            categories,
            products: existing,
        });
    }
    let mut category_ids = Vec::new();
    for (name, description) in CATEGORIES {
        let id = sqlx::query(
            "INSERT INTO categories (name, description) VALUES (?, ?)
             ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
        )
        .bind(name)
        .bind(description)
        .execute(&mut *tx)
        .await?
        .last_insert_id();
        category_ids.push(id);
    }
    for (name, description, price, stock, category) in PRODUCTS {
        let variants = [("", "{}", *price, *stock)];
        let category = category_ids.get(*category).copied();
        product(&mut tx, name, description, category, &variants).await?;
    }
    for (name, description, category, variants) in SIZED {
        let category = category_ids.get(*category).copied();
        product(&mut tx, name, description, category, variants).await?;
    }
    for (code, kind, value) in DISCOUNTS {
        let value: rust_decimal::Decimal = value.parse().expect("sample values are decimals");
        // A code kept from before the catalogue was emptied stays as it is.
        sqlx::query(
            "INSERT INTO discounts (code, kind, value, starts_at) VALUES (?, ?, ?, UTC_TIMESTAMP(6))
             ON DUPLICATE KEY UPDATE code = code",
        )
        .bind(code)
        .bind(kind)
        .bind(value)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Seeded::Loaded {
        categories: CATEGORIES.len(),
        products: PRODUCTS.len() + SIZED.len(),
        discounts: DISCOUNTS.len(),
    })
}

/// Empties every table of the current database but the migrations' own bookkeeping, and
/// restarts the ids at 1, so that the next [`sample_data`] loads the catalogue exactly as
/// on a fresh machine. The schema stays: a running local API keeps working.
pub async fn reset(pool: &MySqlPool) -> Result<(), sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables
         WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'
           AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await?;
    // One connection: the foreign-key switch is per session.
    let mut conn = pool.acquire().await?;
    sqlx::query("SET FOREIGN_KEY_CHECKS = 0")
        .execute(&mut *conn)
        .await?;
    for table in &tables {
        // Names from the schema itself, never from input.
        sqlx::query(&format!("TRUNCATE TABLE `{table}`"))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("SET FOREIGN_KEY_CHECKS = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A product and its variants (an empty SKU: one made from the product id, as the API
/// makes it); its price is the lowest variant price.
async fn product(
    tx: &mut sqlx::Transaction<'static, sqlx::MySql>,
    name: &str,
    description: &str,
    category: Option<u64>,
    variants: &[(&str, &str, &str, u32)],
) -> Result<(), sqlx::Error> {
    let prices: Vec<rust_decimal::Decimal> = variants
        .iter()
        .map(|(_, _, price, _)| price.parse().expect("sample prices are decimals"))
        .collect();
    let lowest = prices.iter().min().copied().unwrap_or_default();
    let id = sqlx::query(
        "INSERT INTO products (name, description, price, category_id) VALUES (?, ?, ?, ?)",
    )
    .bind(name)
    .bind(description)
    .bind(lowest)
    .bind(category)
    .execute(&mut **tx)
    .await?
    .last_insert_id();
    for ((sku, options, _, stock), price) in variants.iter().zip(prices) {
        let sku = if sku.is_empty() {
            format!("P{id}")
        } else {
            (*sku).to_owned()
        };
        sqlx::query(
            "INSERT INTO variants (product_id, sku, options, price, stock) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(sku)
        .bind(*options)
        .bind(price)
        .bind(*stock)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
