//! Fairness among the actors of one arbiter thread.
//!
//! actix drains a mailbox to the end in one go, and admission refills a flooded
//! tenant's mailbox while it drains: without a limit, one busy tenant holds its
//! arbiter thread for as long as the flood lasts, and every tenant placed beside it
//! waits.

/// Messages a tenant actor handles in a row before it lets the other actors on its
/// arbiter run (BENCHMARKS.md, "fair turns").
pub const FAIR_TURN: u32 = 4;

/// Counts an actor's messages in its current turn on the arbiter.
#[derive(Debug, Default)]
pub(crate) struct Fairness {
    handled: u32,
}

impl Fairness {
    /// Counts one message; `true` when the actor's turn is over and it must yield its
    /// thread after this message. An actor alone on its arbiter resumes at once.
    pub(crate) fn handled_one(&mut self) -> bool {
        self.handled += 1;
        if self.handled >= FAIR_TURN {
            self.handled = 0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_yields_after_every_fair_turn_of_messages() {
        let mut fairness = Fairness::default();
        let yields: Vec<bool> = (0..3 * FAIR_TURN).map(|_| fairness.handled_one()).collect();
        let at: Vec<usize> = (0..yields.len()).filter(|&i| yields[i]).collect();
        let turn = FAIR_TURN as usize;
        assert_eq!(at, vec![turn - 1, 2 * turn - 1, 3 * turn - 1]);
    }
}
