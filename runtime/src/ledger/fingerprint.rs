//! A command's fingerprint: XXH3-128 of its postcard encoding.
//!
//! Fingerprints are kept in the idempotency index and in snapshots, so the value for a given
//! command never changes: a retry after a restart must still match. Commit and Release, the
//! commands of the hot path that the ledger fingerprints, are encoded by hand into a stack
//! buffer, byte for byte what postcard writes (the generic serializer cost several times the
//! hash); every other command goes through postcard. (A Reserve from the service carries
//! the fingerprint of the client's request, which the ledger uses instead.)

use super::command::Command;

/// A command's fingerprint.
pub type Fingerprint = [u8; 16];

/// The fingerprint of a command: XXH3-128 of its postcard encoding. Not a cryptographic
/// hash: it only tells one client's retry from another request under the same key of the
/// same customer, and it is on the hot path of every request.
pub fn fingerprint(command: &Command) -> Fingerprint {
    let mut encoding = Encoding::new();
    let hash = if encoding.encode_hot(command) {
        xxhash_rust::xxh3::xxh3_128(encoding.as_slice())
    } else {
        encoded_by_postcard(command)
    };
    hash.to_le_bytes()
}

fn encoded_by_postcard(command: &Command) -> u128 {
    thread_local! {
        /// Scratch space for the encoding, reused so that no call allocates or zeroes a
        /// buffer (the hash depends only on the bytes written, never on what was there).
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            match postcard::to_extend(command, std::mem::take(&mut *buffer)) {
                Ok(encoded) => {
                    let hash = xxhash_rust::xxh3::xxh3_128(&encoded);
                    *buffer = encoded;
                    hash
                }
                Err(_) => xxhash_rust::xxh3::xxh3_128(&[]),
            }
        }
        // Re-entered (cannot happen: encoding does not call back): encode afresh.
        Err(_) => xxhash_rust::xxh3::xxh3_128(&postcard::to_allocvec(command).unwrap_or_default()),
    })
}

/// Most bytes a hot command takes: the variant (1 byte, indexes are below 128) and three
/// `u64` varints (10 bytes each).
const MAX_HOT_BYTES: usize = 1 + 3 * 10;

/// Postcard's encoding of a hot command, in a buffer on the stack.
struct Encoding {
    buf: [u8; MAX_HOT_BYTES],
    len: usize,
}

impl Encoding {
    fn new() -> Self {
        Encoding {
            buf: [0; MAX_HOT_BYTES],
            len: 0,
        }
    }

    /// Encodes a commit or release into this empty buffer (in place: the buffer is not moved
    /// around); `false` for anything else. Postcard writes an enum variant as its index, a
    /// struct as its fields in order, and integers as LEB128 varints.
    fn encode_hot(&mut self, command: &Command) -> bool {
        let out = self;
        match command {
            Command::Commit {
                hold,
                amount,
                units,
            } => {
                out.varint(3);
                out.varint(hold.0);
                out.varint(*amount);
                out.varint(*units);
            }
            Command::Release { hold } => {
                out.varint(4);
                out.varint(hold.0);
            }
            _ => return false,
        }
        true
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The buffer holds the longest hot command (see `MAX_HOT_BYTES`), so no write passes
    /// its end.
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf[self.len] = value as u8 | 0x80;
            self.len += 1;
            value >>= 7;
        }
        self.buf[self.len] = value as u8;
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{
        Category, GrantSpec, HoldId, IncludedGrant, LimitCharge, Measure, OveragePolicy, Price,
        Timestamp, UsageCharge, WalletRef,
    };
    use crate::period::{Period, Window};

    /// A small deterministic generator (no dependency on the proptest strategies).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 11
        }

        /// Integers around every varint length boundary, and the extremes.
        fn int(&mut self) -> u64 {
            let bits = self.next() % 65;
            let base = if bits == 64 { u64::MAX } else { 1u64 << bits };
            match self.next() % 4 {
                0 => base,
                1 => base.wrapping_sub(1),
                2 => base.wrapping_add(1),
                _ => self.next() % (base | 1),
            }
        }

        fn text(&mut self) -> String {
            let len = match self.next() % 6 {
                0 => 0,
                1 => 127,
                2 => 128,
                3 => 129 + (self.next() % 300) as usize,
                _ => (self.next() % 40) as usize,
            };
            (0..len)
                .map(|i| ['a', 'z', '7', '-', 'é', '€'][(i + self.next() as usize) % 6])
                .collect()
        }

        fn wallet(&mut self) -> WalletRef {
            WalletRef::new(self.text(), self.text())
        }

        fn flag(&mut self) -> bool {
            self.next().is_multiple_of(2)
        }

        fn request(&mut self) -> Option<Fingerprint> {
            self.flag().then(|| {
                let mut fp = [0u8; 16];
                for b in &mut fp {
                    *b = self.next() as u8;
                }
                fp
            })
        }

        fn limits(&mut self) -> Vec<LimitCharge> {
            let count = [0, 0, 1, 3][(self.next() % 4) as usize];
            (0..count)
                .map(|_| LimitCharge {
                    counter: self.text(),
                    window: Window {
                        start: Timestamp(self.int()),
                        end: Timestamp(self.int()),
                    },
                    limit: self.flag().then(|| self.int()),
                    measure: if self.flag() {
                        Measure::Credits
                    } else {
                        Measure::Units
                    },
                    amount: self.int(),
                    enforce: self.flag(),
                })
                .collect()
        }

        fn overage(&mut self) -> OveragePolicy {
            if self.flag() {
                OveragePolicy::Deny
            } else {
                OveragePolicy::AllowOverdraft { floor: self.int() }
            }
        }

        fn category(&mut self) -> Category {
            if self.flag() {
                Category::Paid
            } else {
                Category::Promotional
            }
        }

        fn command(&mut self, variant: u64) -> Command {
            match variant {
                0 => Command::OpenWallet {
                    wallet: self.wallet(),
                    overage: self.overage(),
                },
                1 => Command::Grant {
                    wallet: self.wallet(),
                    grant: GrantSpec {
                        amount: self.int(),
                        category: self.category(),
                        priority: self.int() as u32,
                        effective_at: Timestamp(self.int()),
                        expires_at: self.flag().then(|| Timestamp(self.int())),
                        cost_basis_micros: self.int(),
                    },
                },
                2 => Command::Reserve {
                    wallet: self.wallet(),
                    amount: self.int(),
                    timeout_ms: self.int(),
                    limits: self.limits(),
                    price: self.flag().then(|| Price {
                        micro_credits: self.int(),
                        per_units: self.int(),
                    }),
                    request: self.request(),
                },
                3 => Command::Commit {
                    hold: HoldId(self.int()),
                    amount: self.int(),
                    units: self.int(),
                },
                4 => Command::Release {
                    hold: HoldId(self.int()),
                },
                5 => Command::Debit {
                    wallet: self.wallet(),
                    amount: self.int(),
                },
                6 => Command::UpsertCustomer {
                    display_name: self.text(),
                },
                7 => Command::Subscribe {
                    plan: self.text(),
                    since: Timestamp(self.int()),
                    overage: self.overage(),
                    included: (0..self.next() % 3)
                        .map(|_| IncludedGrant {
                            id: self.text(),
                            amount: self.int(),
                            category: self.category(),
                            priority: self.int() as u32,
                            period: [Period::Hour, Period::Month, Period::Never]
                                [(self.next() % 3) as usize],
                            calendar: self.flag(),
                            expires_after_ms: self.flag().then(|| self.int()),
                        })
                        .collect(),
                    request: self.request(),
                },
                9 => Command::SubscribeChange {
                    plan: self.text(),
                    since: Timestamp(self.int()),
                    overage: self.overage(),
                    included: vec![],
                    request: self.request(),
                },
                _ => Command::RecordUsage {
                    wallet: self.wallet(),
                    events: (0..self.next() % 3)
                        .map(|_| UsageCharge {
                            event_id: self.text(),
                            credits: self.int(),
                            counters: self.limits(),
                        })
                        .collect(),
                },
            }
        }
    }

    /// The fingerprint of every kind of command is XXH3-128 of its postcard encoding, and
    /// the hand encoding of a hot command is postcard's, byte for byte.
    #[test]
    fn fingerprints_are_xxh3_of_the_postcard_encoding() {
        let mut generator = Gen(0x5eed);
        let mut by_hand = [0usize; 10];
        for i in 0..20_000u64 {
            let variant = i % 10;
            let command = generator.command(variant);
            let encoded = postcard::to_allocvec(&command).unwrap();
            let mut encoding = Encoding::new();
            if encoding.encode_hot(&command) {
                assert_eq!(encoding.as_slice(), &encoded[..], "{command:?}");
                by_hand[variant as usize] += 1;
            }
            assert_eq!(
                fingerprint(&command),
                xxhash_rust::xxh3::xxh3_128(&encoded).to_le_bytes(),
                "{command:?}"
            );
        }
        // Each hot variant was encoded by hand many times; every other never.
        for (variant, count) in by_hand.iter().enumerate() {
            if [3, 4].contains(&variant) {
                assert!(*count > 50, "variant {variant}: {count} by hand");
            } else {
                assert_eq!(*count, 0, "variant {variant}");
            }
        }
    }

    /// Pinned values: a change of encoding would break every stored idempotency key.
    #[test]
    fn the_fingerprint_of_a_command_is_stable() {
        let reserve = Command::Reserve {
            wallet: WalletRef::new("acme", "credits"),
            amount: 1_000,
            timeout_ms: 30_000,
            limits: vec![],
            price: None,
            request: None,
        };
        let commit = Command::Commit {
            hold: HoldId(300),
            amount: 700,
            units: 0,
        };
        assert_eq!(
            postcard::to_allocvec(&reserve).unwrap(),
            [
                2, 4, b'a', b'c', b'm', b'e', 7, b'c', b'r', b'e', b'd', b'i', b't', b's', 0xe8,
                0x07, 0xb0, 0xea, 0x01, 0, 0, 0
            ]
        );
        assert_eq!(
            postcard::to_allocvec(&commit).unwrap(),
            [3, 0xac, 0x02, 0xbc, 0x05, 0]
        );
        for command in [reserve, commit] {
            assert_eq!(
                fingerprint(&command),
                xxhash_rust::xxh3::xxh3_128(&postcard::to_allocvec(&command).unwrap())
                    .to_le_bytes()
            );
        }
    }
}
