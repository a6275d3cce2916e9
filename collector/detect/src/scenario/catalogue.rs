//! The API the scenario's partners call: a commerce and logistics B2B API with the usual mix of
//! collection, item and write endpoints, a few legacy ones hardly anyone uses, and sensitive
//! ones (admin, exports, debug).

/// How an endpoint's path parameter is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ids {
    /// No parameter.
    None,
    /// A global auto-increment sequence (orders, invoices...): each consumer owns a thin slice
    /// of it, so its own objects are not adjacent numbers. `family` names the sequence.
    Sequence { family: u8 },
    /// A shared catalogue numbered 1..=size (products, stores): every consumer sees the same
    /// objects, popular ones most.
    Catalogue { size: u64 },
    /// UUIDs (customers, payments): no order to walk.
    Uuid { family: u8 },
}

/// One endpoint of the scenario API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointSpec {
    pub method: &'static str,
    /// Path with `{id}` where the parameter goes.
    pub path: &'static str,
    pub ids: Ids,
    /// Mean response body bytes for a successful call.
    pub mean_bytes: f64,
    /// How likely a consumer is to use it (relative).
    pub popularity: f64,
    /// Named like something sensitive (admin, export, debug, internal).
    pub sensitive: bool,
}

impl EndpointSpec {
    /// `"GET /v1/orders/{id}"`: what the inventory would call it.
    pub fn template(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    pub fn has_ids(&self) -> bool {
        self.ids != Ids::None
    }

    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

const fn ep(
    method: &'static str,
    path: &'static str,
    ids: Ids,
    mean_bytes: f64,
    popularity: f64,
) -> EndpointSpec {
    EndpointSpec {
        method,
        path,
        ids,
        mean_bytes,
        popularity,
        sensitive: false,
    }
}

const fn sensitive(method: &'static str, path: &'static str, mean_bytes: f64) -> EndpointSpec {
    EndpointSpec {
        method,
        path,
        ids: Ids::None,
        mean_bytes,
        popularity: 0.0,
        sensitive: true,
    }
}

const ORDERS: Ids = Ids::Sequence { family: 0 };
const INVOICES: Ids = Ids::Sequence { family: 1 };
const SHIPMENTS: Ids = Ids::Sequence { family: 2 };
const RETURNS: Ids = Ids::Sequence { family: 3 };
const CUSTOMERS: Ids = Ids::Uuid { family: 0 };
const PAYMENTS: Ids = Ids::Uuid { family: 1 };
const QUOTES: Ids = Ids::Uuid { family: 2 };
const PRODUCTS: Ids = Ids::Catalogue { size: 20_000 };
const STORES: Ids = Ids::Catalogue { size: 500 };

/// Endpoints with popularity 0 are never part of a normal consumer's set: the sensitive ones
/// (used habitually only by the few consumers given a weekly export job) and the legacy ones
/// (given to a handful of consumers explicitly).
pub const CATALOGUE: &[EndpointSpec] = &[
    ep("GET", "/v1/orders", Ids::None, 24_000.0, 0.6),
    ep("GET", "/v1/orders/{id}", ORDERS, 2_200.0, 0.8),
    ep("POST", "/v1/orders", Ids::None, 900.0, 0.4),
    ep("PATCH", "/v1/orders/{id}", ORDERS, 800.0, 0.2),
    ep("GET", "/v1/orders/{id}/items", ORDERS, 3_500.0, 0.3),
    ep("GET", "/v1/invoices", Ids::None, 18_000.0, 0.3),
    ep("GET", "/v1/invoices/{id}", INVOICES, 1_600.0, 0.4),
    ep("GET", "/v1/invoices/{id}/pdf", INVOICES, 85_000.0, 0.15),
    ep("GET", "/v1/customers", Ids::None, 30_000.0, 0.2),
    ep("GET", "/v1/customers/{id}", CUSTOMERS, 1_800.0, 0.5),
    ep("POST", "/v1/customers", Ids::None, 700.0, 0.2),
    ep(
        "GET",
        "/v1/customers/{id}/addresses",
        CUSTOMERS,
        1_200.0,
        0.2,
    ),
    ep("GET", "/v1/products", Ids::None, 40_000.0, 0.5),
    ep("GET", "/v1/products/{id}", PRODUCTS, 2_800.0, 0.6),
    ep("GET", "/v1/products/{id}/stock", PRODUCTS, 400.0, 0.35),
    ep("GET", "/v1/prices", Ids::None, 60_000.0, 0.2),
    ep("GET", "/v1/shipments/{id}", SHIPMENTS, 1_400.0, 0.35),
    ep(
        "GET",
        "/v1/shipments/{id}/tracking",
        SHIPMENTS,
        2_500.0,
        0.3,
    ),
    ep("POST", "/v1/shipments", Ids::None, 1_100.0, 0.2),
    ep("GET", "/v1/returns/{id}", RETURNS, 1_100.0, 0.1),
    ep("POST", "/v1/returns", Ids::None, 600.0, 0.08),
    ep("GET", "/v1/payments/{id}", PAYMENTS, 900.0, 0.2),
    ep("POST", "/v1/payments", Ids::None, 800.0, 0.15),
    ep("GET", "/v1/webhooks", Ids::None, 2_000.0, 0.1),
    ep("POST", "/v1/webhooks", Ids::None, 400.0, 0.05),
    ep("GET", "/v1/stores/{id}", STORES, 1_500.0, 0.15),
    ep("GET", "/v1/stores/{id}/inventory", STORES, 45_000.0, 0.1),
    ep("GET", "/v1/categories", Ids::None, 8_000.0, 0.25),
    ep("GET", "/v1/search", Ids::None, 15_000.0, 0.3),
    ep("GET", "/v1/users/me", Ids::None, 800.0, 0.3),
    ep("GET", "/v2/orders/{id}", ORDERS, 2_400.0, 0.1),
    ep("GET", "/v1/quotes/{id}", QUOTES, 1_900.0, 0.1),
    ep("POST", "/v1/quotes", Ids::None, 1_000.0, 0.08),
    ep("GET", "/v1/reports/daily", Ids::None, 120_000.0, 0.05),
    // Legacy: still routed, used by a handful of consumers.
    ep("GET", "/v0/legacy/orders/{id}", ORDERS, 2_000.0, 0.0),
    ep(
        "GET",
        "/v1/batch/jobs/{id}",
        Ids::Uuid { family: 3 },
        700.0,
        0.0,
    ),
    ep("GET", "/v1/partners/settlements", Ids::None, 9_000.0, 0.0),
    // Sensitive.
    sensitive("GET", "/v1/exports/orders", 4_000_000.0),
    sensitive("GET", "/v1/exports/customers", 6_000_000.0),
    sensitive("GET", "/v1/admin/users", 30_000.0),
    sensitive("POST", "/v1/admin/api-keys", 500.0),
    sensitive("GET", "/v1/admin/audit-log", 80_000.0),
    sensitive("GET", "/internal/debug/config", 5_000.0),
    sensitive("GET", "/internal/metrics", 20_000.0),
];

/// Indices of the legacy endpoints (popularity 0, not sensitive).
pub fn legacy() -> impl Iterator<Item = usize> {
    CATALOGUE
        .iter()
        .enumerate()
        .filter(|(_, e)| e.popularity == 0.0 && !e.sensitive)
        .map(|(i, _)| i)
}

/// Indices of the sensitive endpoints.
pub fn sensitive_endpoints() -> impl Iterator<Item = usize> {
    CATALOGUE
        .iter()
        .enumerate()
        .filter(|(_, e)| e.sensitive)
        .map(|(i, _)| i)
}

/// Where each global ID sequence stood at the scenario's start, and how fast it grows per hour
/// (all partners together).
pub fn sequence_start(family: u8) -> (u64, f64) {
    match family {
        0 => (48_000_000, 9_000.0),
        1 => (7_200_000, 2_500.0),
        2 => (15_500_000, 4_000.0),
        _ => (910_000, 400.0),
    }
}
