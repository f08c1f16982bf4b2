//! Names shared by the MCPRoute renderers.

/// Prefix of every generated MCP object.
pub const PREFIX: &str = "ai-eg-mcp-";
/// The path MCP is served on when the route sets none.
pub const DEFAULT_PATH: &str = "/mcp";
