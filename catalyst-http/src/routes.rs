//! One router per resource, nested under `/api`. Handlers are a few lines that call the facade.

pub mod account;
pub mod admin;
pub mod alerts;
pub mod auth;
pub mod backups;
pub mod files;
pub mod nodes;
pub mod servers;
pub mod tasks;
pub mod templates;

use catalyst_core::model::Page;

/// `?offset=&limit=` on list endpoints.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows to skip.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Rows to return (1-500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl PageQuery {
    /// As a store page.
    pub fn page(self) -> Page {
        let d = Page::default();
        Page::new(self.offset.unwrap_or(d.offset), self.limit.unwrap_or(d.limit))
    }
}
