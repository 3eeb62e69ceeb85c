use permetrix_storage::VendorId;
use permetrix_storage::records::SettingsRecord;

use crate::domain::TenantState;

/// What the HTTP edge needs to know about a tenant before it sends a message:
/// signature policy, anonymous access, and which vendor signs each tool. The actor
/// republishes it whenever settings or pools change; readers never block it.
#[derive(Clone, Debug)]
pub struct TenantView {
    /// The vendor that owns the tenant.
    pub vendor_id: VendorId,
    /// Current settings.
    pub settings: SettingsRecord,
    /// `(product name, product id, provisioning vendor)` of each pool.
    pub tools: Vec<(String, String, String)>,
}

impl TenantView {
    pub(crate) fn of(vendor_id: VendorId, state: &TenantState) -> Self {
        TenantView {
            vendor_id,
            settings: state.settings().clone(),
            tools: state
                .pools()
                .iter()
                .map(|p| {
                    (
                        p.name().to_owned(),
                        p.product_id().to_owned(),
                        p.package().vendor_id.clone(),
                    )
                })
                .collect(),
        }
    }

    /// The pool name `tool` (name or product id) refers to, if it is provisioned.
    pub fn tool_name(&self, tool: &str) -> Option<&str> {
        self.tools
            .iter()
            .find(|(name, id, _)| name == tool || id == tool)
            .map(|(name, _, _)| name.as_str())
    }

    /// The vendor whose signing secret signs borrows of `tool` (name or product id).
    pub fn tool_vendor(&self, tool: &str) -> Option<&str> {
        self.tools
            .iter()
            .find(|(name, id, _)| name == tool || id == tool)
            .map(|(_, _, vendor)| vendor.as_str())
    }
}
