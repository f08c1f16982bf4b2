//! Who a request is from, as the gateway sees it.

use std::sync::Arc;

/// The authenticated client of a request, as a request extension: an authentication
/// layer in front of the gateway inserts it, and the gateway charges token meters to it
/// and carries it in the exchange record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(pub Arc<str>);
