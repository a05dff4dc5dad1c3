use serde::{Deserialize, Serialize};

/// The four counters of one category. `available + held + sold == total` at every moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockCounts {
    pub total: u32,
    pub available: u32,
    pub held: u32,
    pub sold: u32,
}

impl StockCounts {
    pub fn new(total: u32) -> Self {
        Self {
            total,
            available: total,
            held: 0,
            sold: 0,
        }
    }

    /// The stock invariant. Checked by tests after every step and exported as a gauge.
    pub fn is_consistent(&self) -> bool {
        u64::from(self.available) + u64::from(self.held) + u64::from(self.sold)
            == u64::from(self.total)
            && self.sold <= self.total
    }
}
