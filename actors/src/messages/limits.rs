//! Per-user limits (`/config/limits`).
use crate::domain::{ToolName, UserLimit};
use crate::handling::{TenantCx, TenantMessage};
use crate::reply::Reply;

/// Every tool's per-user limit.
#[derive(Debug)]
pub struct GetUserLimits;

impl TenantMessage for GetUserLimits {
    type Reply = Vec<UserLimit>;
    const KIND: &'static str = "get_user_limits";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Vec<UserLimit>> {
        Reply::ready(Ok(cx.state.user_limits()))
    }
}

/// Set (or with `None` clear) one tool's per-user limit.
#[derive(Debug)]
pub struct SetUserLimit {
    /// Tool name or product id.
    pub tool: ToolName,
    /// Seats one user may hold at once.
    pub max_per_user: Option<u32>,
}

impl TenantMessage for SetUserLimit {
    type Reply = UserLimit;
    const KIND: &'static str = "set_user_limit";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<UserLimit> {
        match cx
            .state
            .set_max_per_user(self.tool.as_str(), self.max_per_user)
        {
            Ok((limit, effects)) => cx.commit(effects, limit),
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}
