//! Variants: the versions a product sells in (size, colour), each with its own SKU, price
//! and stock. Every product has at least one; stock lives here, and the product's `price`
//! is its lowest variant price.

mod model;
mod store;

pub use model::{
    MAX_OPTION_CHARS, MAX_OPTIONS, MAX_SKU_CHARS, MAX_STOCK, NewVariant, Options, Sku, Variant,
    VariantPatch, VariantQuery,
};
pub(crate) use store::product_of;
pub use store::{create, delete, get, list, update_in};
pub(crate) use store::{create_default, of_products, set_only};
