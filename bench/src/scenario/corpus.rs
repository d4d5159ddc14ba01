//! The search scenario's messages: rooms of texts drawn from a fixed
//! vocabulary by a deterministic generator, so that every server holds the
//! same messages and the bench knows how many each query matches.
//!
//! Each text is 5–12 words of [`WORDS`]; [`RARE`] is added to about 1% of
//! them and [`COMMON`] to about 30%. Message `i` of every room is by
//! `AUTHORS[i % 4]`.

/// A word in about 1% of the messages.
pub(super) const RARE: &str = "zephyr";
/// A word in about 30% of the messages.
pub(super) const COMMON: &str = "release";
/// Who writes: message `i` of a room is by `AUTHORS[i % AUTHORS.len()]`.
pub(super) const AUTHORS: [&str; 4] = ["ann", "bob", "cyd", "dee"];

/// The filler words. None starts with [`RARE`] or [`COMMON`] (search
/// matches the start of words), which a test checks.
const WORDS: [&str; 64] = [
    "the", "build", "is", "green", "again", "after", "lunch", "we", "should", "ship", "it",
    "today", "who", "owns", "this", "ticket", "please", "review", "my", "patch", "looks", "good",
    "to", "me", "merged", "into", "main", "tests", "fail", "on", "windows", "only", "flaky",
    "network", "retry", "later", "coffee", "break", "meeting", "moved", "tomorrow", "morning",
    "docs", "need", "an", "update", "for", "new", "api", "server", "cluster", "memory", "leak",
    "fixed", "thanks", "everyone", "great", "work", "team", "deadline", "friday", "customer",
    "reported", "bug",
];

/// A deterministic stream of numbers (splitmix64).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `rooms` rooms of `per_room` messages each.
#[derive(Debug, Clone, Copy)]
pub struct Corpus {
    /// Rooms.
    pub rooms: usize,
    /// Messages per room.
    pub per_room: usize,
}

/// Which messages a query asks for: those holding (the start of) `word`,
/// in room `room` and by `from` when given.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// What the table calls it.
    pub label: &'static str,
    /// The word.
    pub word: &'static str,
    /// `in:` this room (its number).
    pub room: Option<usize>,
    /// `from:` this author.
    pub from: Option<&'static str>,
}

impl Probe {
    /// The query as a person types it.
    pub fn q(&self) -> String {
        let mut q = String::new();
        if let Some(from) = self.from {
            q += &format!("from:{from} ");
        }
        q += self.word;
        if let Some(room) = self.room {
            q += &format!(" in:{}", Corpus::room(room));
        }
        q
    }

    /// Whether a message (its room, author and text) is one it asks for.
    pub fn hits(&self, room: &str, from: &str, text: &str) -> bool {
        self.room.is_none_or(|r| Corpus::room(r) == room)
            && self.from.is_none_or(|f| f.eq_ignore_ascii_case(from))
            && text
                .split(|c: char| !c.is_alphanumeric())
                .any(|w| w.to_lowercase().starts_with(self.word))
    }
}

impl Corpus {
    /// The name of room `r`.
    pub fn room(r: usize) -> String {
        format!("search-{r:02}")
    }

    /// The author of message `i` of any room.
    pub fn author(i: usize) -> &'static str {
        AUTHORS[i % AUTHORS.len()]
    }

    /// The text of message `i` of room `r`.
    pub fn text(r: usize, i: usize) -> String {
        let mut dice = Dice(((r as u64) << 32) ^ i as u64 ^ 0x5EA2_C4ED);
        let n = 5 + dice.below(8);
        let mut words: Vec<&str> = (0..n).map(|_| WORDS[dice.below(WORDS.len())]).collect();
        if dice.below(100) < 30 {
            let at = dice.below(words.len() + 1);
            words.insert(at, COMMON);
        }
        if dice.below(1000) < 10 {
            let at = dice.below(words.len() + 1);
            words.insert(at, RARE);
        }
        words.join(" ")
    }

    /// Messages in all.
    pub fn messages(&self) -> usize {
        self.rooms * self.per_room
    }

    /// How many messages `probe` matches.
    pub fn matching(&self, probe: &Probe) -> usize {
        let rooms = probe.room.map_or(0..self.rooms, |r| r..r + 1);
        rooms
            .flat_map(|r| (0..self.per_room).map(move |i| (r, i)))
            .filter(|&(r, i)| probe.hits(&Self::room(r), Self::author(i), &Self::text(r, i)))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fillers_never_match_the_searched_words() {
        for w in WORDS {
            assert!(!w.starts_with(RARE) && !w.starts_with(COMMON), "{w}");
        }
    }

    #[test]
    fn texts_are_fixed_and_the_words_as_frequent_as_meant() {
        assert_eq!(Corpus::text(3, 17), Corpus::text(3, 17));
        assert_ne!(Corpus::text(3, 17), Corpus::text(17, 3));
        let corpus = Corpus {
            rooms: 10,
            per_room: 2_000,
        };
        let share = |word| {
            let probe = Probe {
                label: "",
                word,
                room: None,
                from: None,
            };
            corpus.matching(&probe) as f64 / corpus.messages() as f64
        };
        assert!((0.007..0.013).contains(&share(RARE)), "{}", share(RARE));
        assert!((0.28..0.32).contains(&share(COMMON)), "{}", share(COMMON));
    }

    #[test]
    fn probes_read_as_typed_and_match_like_the_server() {
        let probe = Probe {
            label: "",
            word: RARE,
            room: Some(2),
            from: Some("ann"),
        };
        assert_eq!(probe.q(), "from:ann zephyr in:search-02");
        assert!(probe.hits("search-02", "Ann", "a Zephyrs b"));
        assert!(!probe.hits("search-03", "ann", "zephyr"));
        assert!(!probe.hits("search-02", "bob", "zephyr"));
        assert!(!probe.hits("search-02", "ann", "azephyr"));
    }
}
