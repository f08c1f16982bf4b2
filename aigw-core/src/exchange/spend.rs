//! The exchange's money side: budgets checked at admission, a stream's running cost
//! watched for the cut-off, the exact cost settled when the exchange ends
//! ([`crate::budget`]).

use super::{Exchange, Target};
use crate::Result;
use crate::budget::{Admission, Billed, Spending};
use crate::meter::ReserveSettings;
use crate::usage::TokenUsage;
use std::sync::Arc;

/// Below this many bytes of delivered text the output is re-estimated on every chunk.
const CHEAP_ESTIMATE_BYTES: u64 = 8 * 1024;

/// A stream's output estimate, refreshed as the delivered text grows by an eighth and
/// extrapolated in between, so watching a long stream costs linear time.
#[derive(Debug, Default)]
pub(super) struct RunningOutput {
    bytes: u64,
    tokens: u64,
}

impl Exchange {
    /// Prices the exchange and enforces its money budgets ([`Spending`]): checked when
    /// the exchange reserves, watched during a stream, settled when it ends. Streams
    /// ask the upstream for usage so the settled cost is the provider's count.
    pub fn set_spending(&mut self, spending: Arc<Spending>) {
        self.spending = Some(spending);
        self.force_include_usage = true;
    }

    /// The usage a reservation holds for the request on `model`: the prompt counted,
    /// the output it allows or the settings' default.
    pub(super) fn request_estimate(&self, model: &str, settings: ReserveSettings) -> TokenUsage {
        crate::estimate::request_estimate(
            self.endpoint,
            model,
            &self.body,
            self.info.max_tokens,
            settings.default_output_tokens,
        )
    }

    /// Admits the exchange against its budgets (once), reserving its estimated cost on
    /// `target` (`estimated` when the meter already computed it, else with `settings`,
    /// else with the spend engine's output allowance): who it is from comes from
    /// [`Exchange::set_identity`] or [`Exchange::set_client`], where it goes from the
    /// route.
    pub(super) async fn admit_spend(
        &mut self,
        target: &Target,
        model: &str,
        estimated: Option<TokenUsage>,
        settings: Option<ReserveSettings>,
    ) -> Result<()> {
        let Some(spending) = self.spending.clone() else {
            return Ok(());
        };
        if self.spend.is_some() {
            return Ok(());
        }
        let identity = self.record.identity.clone();
        let key_budget = identity.as_ref().and_then(|i| i.budget);
        let estimate = match estimated {
            Some(e) => e,
            // Counting the prompt costs CPU: only when a budget can hold it.
            None if !spending.may_hold(key_budget.is_some()) => TokenUsage::default(),
            None => {
                let settings = settings.unwrap_or(ReserveSettings {
                    default_output_tokens: spending.default_output_tokens(),
                });
                self.request_estimate(model, settings)
            }
        };
        let admission = Admission {
            route: self.record.route.as_deref().unwrap_or(""),
            key: self.record.client.as_deref(),
            team: identity.as_ref().and_then(|i| i.team.as_deref()),
            key_budget,
            estimate,
            billed: Some(Billed {
                model,
                provider: Some(target.schema.name.provider_name()),
                backend: Some(&target.backend),
            }),
        };
        self.spend = Some(spending.admit(&admission).await?);
        Ok(())
    }

    fn billed(&self) -> Billed<'_> {
        Billed {
            model: self
                .record
                .effective_model
                .as_deref()
                .unwrap_or(&self.info.model),
            provider: self.record.provider,
            backend: self.record.backend.as_deref(),
        }
    }

    /// After a chunk: once a cut-off budget has run out, fails with
    /// [`crate::Error::BudgetExceeded`] (the adapter ends the stream with it) and marks
    /// the exchange cut, so later chunks are read for their usage only.
    pub(super) fn check_spend(&mut self, end: bool) -> Result<()> {
        let watch = self.spend.as_ref().is_some_and(|g| g.cuts());
        if !watch || end || self.cut || !self.info.stream {
            return Ok(());
        }
        let usage = self.running_usage();
        let Some(guard) = self.spend.as_ref() else {
            return Ok(());
        };
        if let Err(e) = guard.check(&usage, &self.billed()) {
            self.cut = true;
            return Err(e);
        }
        Ok(())
    }

    /// The usage so far: what the provider reported, with the input estimated from
    /// the request and the output from the text delivered when they are not (yet).
    fn running_usage(&mut self) -> TokenUsage {
        let mut usage = self.record.usage;
        let model = self
            .record
            .effective_model
            .clone()
            .unwrap_or_else(|| self.info.model.clone());
        if usage.input.is_none() {
            let endpoint = self.endpoint;
            let body = &self.body;
            let input = *self
                .input_estimate
                .get_or_insert_with(|| crate::estimate::input_tokens(endpoint, &model, body));
            usage.input = Some(input);
        }
        let bytes = self.delivered.bytes();
        let r = &mut self.running_output;
        if bytes < CHEAP_ESTIMATE_BYTES || bytes >= r.bytes + r.bytes / 8 {
            r.tokens = self.delivered.output_tokens(self.endpoint, &model);
            r.bytes = bytes;
        }
        let estimated = if r.bytes == 0 {
            0
        } else {
            u64::try_from(u128::from(r.tokens) * u128::from(bytes) / u128::from(r.bytes))
                .unwrap_or(u64::MAX)
        };
        usage.output = Some(usage.output.unwrap_or(0).max(estimated));
        usage
    }

    /// Whether a cut-off ended the stream: later chunks are read for usage only.
    pub(super) const fn is_cut(&self) -> bool {
        self.cut
    }

    /// Settles the exchange's cost (once) and records it.
    pub(super) fn settle_spend(&mut self) {
        if let Some(guard) = self.spend.take() {
            self.record.spend_micros = guard.settle(&self.record.usage, &self.billed());
        }
    }
}
