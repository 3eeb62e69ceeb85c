//! The overage ledger's hash chain.
//!
//! Each charge carries `hash = SHA-256(tenant, fields…, prev_hash)`, `prev_hash` being
//! the previous charge's hash (zeros for the first). Rewriting, dropping or reordering a
//! charge breaks every later link, so the vendor and the customer can both check the
//! chain they are shown.
use permetrix_storage::records::ChargeRecord;
use permetrix_storage::{BorrowId, Money, TenantId, Timestamp};
use sha2::{Digest, Sha256};

/// Where the tenant's ledger ends: the next charge continues from here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerHead {
    /// Sequence number of the last charge (0 = empty ledger).
    pub seq: u64,
    /// Hash of the last charge (zeros = empty ledger).
    pub hash: [u8; 32],
}

impl LedgerHead {
    /// The head after `charge`.
    pub fn after(charge: &ChargeRecord) -> Self {
        LedgerHead {
            seq: charge.seq,
            hash: charge.hash,
        }
    }

    /// Builds the next charge of the chain (does not advance the head).
    #[allow(clippy::too_many_arguments)]
    pub fn next_charge(
        &self,
        tenant: &TenantId,
        product_id: &str,
        product_name: &str,
        borrow_id: BorrowId,
        user: &str,
        charged_at: Timestamp,
        amount: Money,
    ) -> ChargeRecord {
        let mut charge = ChargeRecord {
            seq: self.seq + 1,
            id: uuid::Uuid::new_v4().to_string(),
            product_id: product_id.to_owned(),
            product_name: product_name.to_owned(),
            borrow_id,
            user: user.to_owned(),
            charged_at,
            amount,
            prev_hash: self.hash,
            hash: [0; 32],
        };
        charge.hash = chain_hash(tenant, &charge);
        charge
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    // Length-prefixed, so that field boundaries cannot be shifted.
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The hash a charge must carry, given its fields and `prev_hash`.
pub fn chain_hash(tenant: &TenantId, c: &ChargeRecord) -> [u8; 32] {
    let mut h = Sha256::new();
    field(&mut h, b"permetrix-ledger-v1");
    field(&mut h, tenant.as_str().as_bytes());
    field(&mut h, &c.seq.to_be_bytes());
    field(&mut h, c.id.as_bytes());
    field(&mut h, c.product_id.as_bytes());
    field(&mut h, c.product_name.as_bytes());
    field(&mut h, c.borrow_id.as_bytes());
    field(&mut h, c.user.as_bytes());
    field(&mut h, &c.charged_at.millis().to_be_bytes());
    field(&mut h, &c.amount.cents().to_be_bytes());
    field(&mut h, &c.prev_hash);
    h.finalize().into()
}

/// Checks a ledger read in order from its first charge (or from `start`, the head
/// before the first charge given). Returns the sequence number of the first charge that
/// does not verify.
pub fn verify_chain<'a>(
    tenant: &TenantId,
    start: LedgerHead,
    charges: impl IntoIterator<Item = &'a ChargeRecord>,
) -> Result<LedgerHead, u64> {
    let mut head = start;
    for c in charges {
        if c.seq != head.seq + 1 || c.prev_hash != head.hash || c.hash != chain_hash(tenant, c) {
            return Err(c.seq);
        }
        head = LedgerHead::after(c);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> (TenantId, Vec<ChargeRecord>) {
        let t = TenantId::parse("acme").unwrap();
        let mut head = LedgerHead::default();
        let mut out = Vec::new();
        for i in 0..n {
            let c = head.next_charge(
                &t,
                "ecu",
                "ECU",
                BorrowId::random(),
                "dev",
                Timestamp::from_secs(i as i64),
                Money::from_cents(500),
            );
            head = LedgerHead::after(&c);
            out.push(c);
        }
        (t, out)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (t, charges) = chain(5);
        let head = verify_chain(&t, LedgerHead::default(), &charges).unwrap();
        assert_eq!(head.seq, 5);
    }

    #[test]
    fn a_modified_amount_is_detected() {
        let (t, mut charges) = chain(5);
        charges[2].amount = Money::from_cents(1);
        assert_eq!(verify_chain(&t, LedgerHead::default(), &charges), Err(3));
    }

    #[test]
    fn a_dropped_charge_is_detected() {
        let (t, mut charges) = chain(5);
        charges.remove(1);
        assert_eq!(verify_chain(&t, LedgerHead::default(), &charges), Err(3));
    }

    #[test]
    fn a_chain_does_not_verify_for_another_tenant() {
        let (_, charges) = chain(2);
        let other = TenantId::parse("globex").unwrap();
        assert_eq!(
            verify_chain(&other, LedgerHead::default(), &charges),
            Err(1)
        );
    }
}
