//! Cost: `llmRequestCosts`, including CEL expressions.
