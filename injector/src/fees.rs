//! Fees that follow the chain while a run goes on.
//!
//! Under load the base fee rises (EIP-1559: up to 12.5 % a block, on IoTeX too, from its floor), so a gas price
//! read once at start turns a growing share of a long or fast run into "underpriced" rejections, which are the
//! tool's fault, not the cluster's. So the fees actions are signed with live in a [`FeeCell`] that
//! [`refresh`] re-reads from the nodes every `--fee-refresh` (the same sources as at start: `eth_gasPrice`,
//! and `eth_maxPriorityFeePerGas` for type 2, the highest across endpoints), and at once when a send is refused
//! as underpriced ([`FeeCell::underpriced`]). A type-2 cap stays twice the quoted gas price (`signer.rs`),
//! headroom as wallets give it. `--max-fee` is the operator's ceiling: no action is signed above it, even if
//! the chain asks for more (those are then refused, and counted as such). A fixed `--gas-price` is never
//! refreshed.

use crate::node::Node;
use crate::run_config::RunConfig;
use crate::signer::{Fees, TxType};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// The fees to sign with now, shared by every action task and the refresher.
#[derive(Debug)]
pub struct FeeCell {
    current: Mutex<Fees>,
    /// `--max-fee`: the highest fee per gas an action may be signed with.
    max_fee: Option<u128>,
    tx_type: TxType,
    /// False with a fixed `--gas-price`: nothing refreshes the cell.
    live: bool,
    wake: Notify,
    refreshed: Notify,
    refreshes: AtomicU64,
}

impl FeeCell {
    /// Starts at `initial` (clamped to `max_fee`); `live` when [`refresh`] will run for it.
    pub fn new(initial: Fees, max_fee: Option<u128>, tx_type: TxType, live: bool) -> FeeCell {
        FeeCell {
            current: Mutex::new(clamp(initial, max_fee, tx_type)),
            max_fee,
            tx_type,
            live,
            wake: Notify::new(),
            refreshed: Notify::new(),
            refreshes: AtomicU64::new(0),
        }
    }

    /// True when the fees follow the chain (no fixed `--gas-price`).
    pub fn live(&self) -> bool {
        self.live
    }

    /// The fees to sign the next action with.
    pub fn get(&self) -> Fees {
        *self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the fees (clamped to `--max-fee`).
    pub fn set(&self, fees: Fees) {
        *self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            clamp(fees, self.max_fee, self.tx_type);
        self.refreshes.fetch_add(1, Ordering::AcqRel);
        self.refreshed.notify_waiters();
    }

    /// Waits, at most `at_most`, until the fees were re-read after the `seen`-th read ([`FeeCell::refreshes`]
    /// when the action was signed), so a retry after an underpriced refusal does not sign at the same fee.
    pub async fn newer_than(&self, seen: u64, at_most: Duration) {
        let newer = async {
            loop {
                // Created before the check: a `notify_waiters` in between still wakes it.
                let refreshed = self.refreshed.notified();
                if self.refreshes() > seen {
                    return;
                }
                refreshed.await;
            }
        };
        let _ = tokio::time::timeout(at_most, newer).await;
    }

    /// A send was refused as underpriced: refresh now rather than at the next interval.
    pub fn underpriced(&self) {
        self.wake.notify_one();
    }

    /// How many times the fees were re-read during the run.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Acquire)
    }
}

/// `fees` held to `max_fee`: the tip, and the fee per gas actions are signed with (the legacy gas price, or
/// the type-2 cap of twice the quoted gas price, so that quote is held to half the ceiling).
fn clamp(fees: Fees, max_fee: Option<u128>, tx_type: TxType) -> Fees {
    let Some(m) = max_fee else { return fees };
    let quote_max = match tx_type {
        TxType::Legacy => m,
        TxType::Eip1559 => (m / 2).max(1),
    };
    Fees { gas_price: fees.gas_price.min(quote_max), priority_fee: fees.priority_fee.min(m) }
}

/// Re-reads the fees every `--fee-refresh` and whenever a send was refused as underpriced (at most once per 100 ms, so
/// a burst of refusals costs one read), until `stop` turns true.
pub async fn refresh(cell: &FeeCell, nodes: &[Node], cfg: &RunConfig, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(cfg.fee_refresh) => {}
            () = cell.wake.notified() => {}
        }
        // Read as at start; an endpoint that does not answer skips this refresh (the fees in force stay).
        if let Ok(fees) = crate::setup::fees(cfg, nodes).await {
            let before = cell.get();
            cell.set(fees);
            let now = cell.get();
            if now.gas_price != before.gas_price {
                tracing::debug!(gas_price = now.gas_price, priority_fee = now.priority_fee, "fees refreshed");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_holds_the_gas_price_and_the_tip() {
        let cell = FeeCell::new(Fees { gas_price: 50, priority_fee: 7 }, Some(40), TxType::Legacy, true);
        assert_eq!((cell.get().gas_price, cell.get().priority_fee), (40, 7));
        cell.set(Fees { gas_price: 30, priority_fee: 60 });
        assert_eq!((cell.get().gas_price, cell.get().priority_fee), (30, 40));
        assert_eq!(cell.refreshes(), 1);
        let free = FeeCell::new(Fees { gas_price: 50, priority_fee: 7 }, None, TxType::Legacy, true);
        free.set(Fees { gas_price: 5_000, priority_fee: 9 });
        assert_eq!(free.get().gas_price, 5_000);
        // Type 2 signs a cap of twice the quote: the quote is held to half the ceiling.
        let t2 = FeeCell::new(Fees { gas_price: 50, priority_fee: 7 }, Some(40), TxType::Eip1559, true);
        assert_eq!(crate::signer::max_fee_per_gas(TxType::Eip1559, t2.get()), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_waits_for_a_newer_read_but_not_forever() {
        let cell = std::sync::Arc::new(FeeCell::new(Fees::flat(10), None, TxType::Legacy, true));
        let seen = cell.refreshes();
        let c = cell.clone();
        let setter = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.set(Fees::flat(20));
        });
        let t = tokio::time::Instant::now();
        cell.newer_than(seen, Duration::from_secs(5)).await;
        assert_eq!((t.elapsed(), cell.get().gas_price), (Duration::from_millis(300), 20));
        let _ = setter.await;
        let t = tokio::time::Instant::now();
        cell.newer_than(cell.refreshes(), Duration::from_secs(2)).await;
        assert_eq!(t.elapsed(), Duration::from_secs(2), "bounded when nothing refreshes");
    }
}
