//! Token texts and the text-to-id index, laid out for the merge loops.
//!
//! The SentencePiece loop looks up about three strings per input character, most of them
//! short and many of them not tokens, and loading a BPE vocabulary looks up three per
//! merge. With a `HashMap<String, u32>` each lookup chases a bucket, then the key's heap
//! allocation; on Gemma 3's 262k-token vocabulary that made the 1.2 MB wikitext file take
//! 1.3 s. Here all texts live in one buffer, and the index is an open-addressing table
//! whose slots hold a fingerprint, the length and the first eight bytes of the text: a
//! lookup of a text of up to eight bytes, hit or miss, reads one slot and nothing else.
//! Building it allocates three vectors instead of one string per token.

use crate::fxhash::FxHasher;
use std::hash::Hasher;

#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    /// Token id + 1; 0 marks an empty slot.
    id_plus_one: u32,
    /// Low 24 bits of the mixed hash, then the text's length (255 for 255 or more).
    tag: u32,
    /// The first eight bytes of the text, zero-padded.
    prefix: u64,
}

/// A text's key as stored in a slot, id aside.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    tag: u32,
    prefix: u64,
}

impl Key {
    fn new(text: &str, h: u64) -> Key {
        let bytes = text.as_bytes();
        let mut prefix = [0u8; 8];
        let n = bytes.len().min(8);
        prefix[..n].copy_from_slice(&bytes[..n]);
        Key {
            tag: ((h as u32) << 8) | bytes.len().min(255) as u32,
            prefix: u64::from_le_bytes(prefix),
        }
    }
}

/// All token texts, indexed by id and by text.
pub(crate) struct TokenTable {
    texts: String,
    /// `texts[ends[id - 1]..ends[id]]` is the text of token `id` (0 before the first).
    ends: Vec<usize>,
    slots: Vec<Slot>,
    /// log2 of `slots.len()`.
    bits: u32,
}

/// Two tokens with the same text: (text, first id, second id).
pub(crate) struct Duplicate(pub(crate) String, pub(crate) u32, pub(crate) u32);

fn hash(text: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(text.as_bytes());
    hasher.write_usize(text.len());
    let h = hasher.finish();
    // Fx mixes low bits poorly; fold the high half down before splitting the hash.
    (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

impl TokenTable {
    /// Indexes the texts, in id order. Ids must fit in u32 (checked by the caller).
    pub(crate) fn new<'a>(
        texts: impl ExactSizeIterator<Item = &'a str>,
    ) -> Result<TokenTable, Duplicate> {
        let n = texts.len();
        // Load factor at most 1/2 keeps probe runs short.
        let bits = (n.max(1) * 2).next_power_of_two().trailing_zeros().max(4);
        let mut table = TokenTable {
            texts: String::new(),
            ends: Vec::with_capacity(n),
            slots: vec![Slot::default(); 1 << bits],
            bits,
        };
        for (i, text) in texts.enumerate() {
            let id = i as u32;
            let h = hash(text);
            if let Some(other) = table.find(text, h) {
                return Err(Duplicate(text.to_owned(), other, id));
            }
            let key = Key::new(text, h);
            let mut at = table.home(h);
            while table.slots[at].id_plus_one != 0 {
                at = (at + 1) & table.mask();
            }
            table.slots[at] = Slot {
                id_plus_one: id + 1,
                tag: key.tag,
                prefix: key.prefix,
            };
            table.texts.push_str(text);
            table.ends.push(table.texts.len());
        }
        Ok(table)
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, h: u64) -> usize {
        (h >> (64 - self.bits)) as usize
    }

    /// The text of a token.
    pub(crate) fn text(&self, id: u32) -> Option<&str> {
        let id = id as usize;
        let end = *self.ends.get(id)?;
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        self.texts.get(start..end)
    }

    /// The token with exactly this text.
    pub(crate) fn get(&self, text: &str) -> Option<u32> {
        self.find(text, hash(text))
    }

    fn find(&self, text: &str, h: u64) -> Option<u32> {
        let key = Key::new(text, h);
        let mut at = self.home(h);
        loop {
            let slot = self.slots[at];
            if slot.id_plus_one == 0 {
                return None;
            }
            if slot.tag == key.tag && slot.prefix == key.prefix {
                let id = slot.id_plus_one - 1;
                // Equal length and first eight bytes: a text of up to eight bytes is found.
                if text.len() <= 8 || self.text(id) == Some(text) {
                    return Some(id);
                }
            }
            at = (at + 1) & self.mask();
        }
    }
}
