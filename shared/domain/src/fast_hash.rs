//! A fast hasher for the maps looked up on every request (verified tokens, sold-out hints).
//!
//! std's SipHash resists chosen collisions, at about 4 instructions a byte: a 200-byte token
//! cost more to hash than the rest of its cache lookup. This one (FxHash's rotate, xor and
//! multiply per 8 bytes, then a full 64-bit mix) does not resist them, so it is only for maps
//! whose entries the process admits after checking them: a verified token, a category the
//! stock store refused. A client can choose what it looks up, never what is stored, so it
//! can make a lookup miss but cannot pile entries into one bucket.

use std::hash::{BuildHasher, Hasher};

/// Builds [`FastHasher`]s, for `HashMap::with_hasher` and the like.
#[derive(Debug, Default, Clone, Copy)]
pub struct BuildFastHasher;

impl BuildHasher for BuildFastHasher {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl FastHasher {
    /// rustc-hash's multiplier.
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    /// MurmurHash3's finaliser: every bit of the state moves every bit of the hash, so the
    /// low bits a table indexes by are as good as the high ones.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher as _;

    use super::*;

    #[test]
    fn similar_keys_spread_over_the_low_bits() {
        let hash = |key: &str| BuildFastHasher.hash_one(key);
        assert_eq!(hash("Floor"), hash("Floor"));
        assert_ne!(hash("Floor"), hash("Floor\0"));
        assert_ne!(hash(""), hash("\0"));
        // 4,096 keys differing in one trailing digit fill most of 4,096 buckets.
        let buckets: HashSet<u64> = (0..4096)
            .map(|n| hash(&format!("token-{n}")) & 4095)
            .collect();
        assert!(buckets.len() > 2400, "{} buckets", buckets.len());
    }
}
