//! Fresh idempotency keys and event ids for calls where the user gave none. They only need
//! to be unique, not secret: BLAKE3 over the clock, the process id, a counter and the
//! per-process random seed of `RandomState`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Hex digits kept from the hash: 96 bits, so collisions need ~2^48 keys.
const KEY_HEX_DIGITS: usize = 24;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new unique key, `<prefix>-<24 hex digits>`, e.g. `cli-3f9a...`.
pub fn fresh_key(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut seeded = RandomState::new().build_hasher();
    seeded.write_u128(nanos);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    hasher.update(&seeded.finish().to_le_bytes());
    let hex = hasher.finalize().to_hex();
    format!("{prefix}-{}", &hex[..KEY_HEX_DIGITS])
}

/// The `--key` the user gave, or a fresh one announced on stderr before the call is sent,
/// so the user can retry with it even when the call times out.
pub fn idempotency_key(given: Option<String>) -> String {
    given.unwrap_or_else(|| announce("idempotency key", "--key", fresh_key("cli")))
}

/// The `--id` of a usage event the user gave, or a fresh one announced on stderr.
pub fn event_id(given: Option<String>) -> String {
    given.unwrap_or_else(|| announce("event id", "--id", fresh_key("evt")))
}

fn announce(what: &str, flag: &str, key: String) -> String {
    eprintln!("{what}: {key} (to retry safely, pass {flag} {key})");
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_keys_are_unique_and_well_formed() {
        let keys: std::collections::HashSet<String> =
            (0..1_000).map(|_| fresh_key("cli")).collect();
        assert_eq!(keys.len(), 1_000);
        for key in &keys {
            let hex = key.strip_prefix("cli-").unwrap();
            assert_eq!(hex.len(), KEY_HEX_DIGITS);
            assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn a_given_key_is_kept() {
        assert_eq!(idempotency_key(Some("k1".into())), "k1");
        assert_eq!(event_id(Some("e1".into())), "e1");
        assert!(event_id(None).starts_with("evt-"));
    }
}
