//! The functions of the shop, each with its own router over one database, as the tests
//! that span functions use them. Each test file adds the calls it needs.

use sqlx::MySqlPool;
use testkit::TestApp;

pub struct Shop {
    #[allow(dead_code)]
    pub users: TestApp,
    pub orders: TestApp,
    // Not every test file pays or deletes products.
    #[allow(dead_code)]
    pub payments: TestApp,
    #[allow(dead_code)]
    pub cart: TestApp,
    #[allow(dead_code)]
    pub products: TestApp,
}

impl Shop {
    pub fn new(pool: MySqlPool) -> Self {
        Self {
            users: TestApp::new(pool.clone(), users::router),
            orders: TestApp::new(pool.clone(), orders::router),
            payments: TestApp::new(pool.clone(), payments::router),
            cart: TestApp::new(pool.clone(), cart::router),
            products: TestApp::new(pool, products::router),
        }
    }

    pub fn pool(&self) -> &MySqlPool {
        self.orders.pool()
    }
}
