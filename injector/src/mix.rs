//! The action mix (`--mix "transfer=80,execution=20"`): which kind of action each tick sends.
//!
//! The choice is a pure function of the tick's sequence number, so two runs with the same schedule send the
//! same kinds in the same order, and executions are spread evenly among transfers instead of bunched.

use crate::error::ConfigError;

/// The action mix by weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// Weight of transfers.
    pub transfer: u32,
    /// Weight of executions.
    pub execution: u32,
}

/// One kind of action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// A value transfer.
    Transfer,
    /// A contract call.
    Execution,
}

impl Mix {
    /// Parses "transfer=80,execution=20".
    pub fn parse(s: &str) -> Result<Mix, ConfigError> {
        let invalid = |reason: String| ConfigError::invalid("mix", reason);
        let mut mix = Mix { transfer: 0, execution: 0 };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, w) = part
                .split_once('=')
                .ok_or_else(|| invalid(format!("`{part}` is not NAME=WEIGHT; write \"transfer=80,execution=20\"")))?;
            let w: u32 = w.trim().parse().map_err(|_| invalid(format!("weight `{w}` is not a whole number")))?;
            match name.trim() {
                "transfer" => mix.transfer = w,
                "execution" => mix.execution = w,
                other => return Err(invalid(format!("unknown action `{other}`; use transfer and execution"))),
            }
        }
        if mix.transfer == 0 && mix.execution == 0 {
            return Err(invalid("all weights are zero".into()));
        }
        Ok(mix)
    }

    /// The kind of tick `seq`: executions spread evenly among transfers (Bresenham), deterministic.
    pub fn pick(&self, seq: u64) -> ActionKind {
        let total = u64::from(self.transfer) + u64::from(self.execution);
        if total == 0 {
            // Only a hand-built `Mix` can be all zero (`parse` refuses it); send transfers rather than panic.
            return ActionKind::Transfer;
        }
        let e = u64::from(self.execution);
        let s = seq % total;
        if (s + 1) * e / total > s * e / total { ActionKind::Execution } else { ActionKind::Transfer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_interleaves() {
        let m = Mix::parse("transfer=80,execution=20").unwrap();
        let execs = (0..100).filter(|s| m.pick(*s) == ActionKind::Execution).count();
        assert_eq!(execs, 20);
        // Spread out, not bunched: never two executions in a row at 20 %.
        assert!((0..99).all(|s| !(m.pick(s) == ActionKind::Execution && m.pick(s + 1) == ActionKind::Execution)));
        assert!(Mix::parse("transfer=0").is_err());
        assert!(Mix::parse("deploy=1").unwrap_err().to_string().contains("unknown action"));
        assert!(Mix::parse("transfer").is_err());
    }
}
