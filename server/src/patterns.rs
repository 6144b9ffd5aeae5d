//! Room name patterns: the globs in `SIO_CLIENT_PUBLISH` and in a token's `rooms` claim.
//!
//! `*` matches any run of characters (including `:` and `/`), `?` one character,
//! `[abc]` a class; everything else is literal.
//!
//! ```
//! use sio_server::patterns::RoomPatterns;
//!
//! let p = RoomPatterns::new(["news:*", "lobby"]).unwrap();
//! assert!(p.matches("news:sport"));
//! assert!(p.matches("lobby"));
//! assert!(!p.matches("lobby2"));
//! assert!(!RoomPatterns::none().matches("lobby"));
//! ```

use std::fmt;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// A pattern that is not a valid glob.
#[derive(Debug, thiserror::Error)]
#[error("room pattern {pattern:?}: {source}")]
pub struct PatternError {
    pattern: String,
    #[source]
    source: globset::Error,
}

/// A set of room globs; a room is allowed when any of them matches.
#[derive(Clone)]
pub struct RoomPatterns {
    set: GlobSet,
    sources: Vec<String>,
}

impl RoomPatterns {
    /// Compiles `patterns`. Empty strings are ignored.
    pub fn new<I, S>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut builder = GlobSetBuilder::new();
        let mut sources = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            builder.add(glob(p)?);
            sources.push(p.to_string());
        }
        let set = builder.build().map_err(|source| PatternError {
            pattern: sources.join(","),
            source,
        })?;
        Ok(Self { set, sources })
    }

    /// A set that matches nothing.
    pub fn none() -> Self {
        Self {
            set: GlobSet::empty(),
            sources: Vec::new(),
        }
    }

    /// Whether `room` matches any pattern.
    pub fn matches(&self, room: &str) -> bool {
        self.set.is_match(room)
    }

    /// Whether the set has no pattern at all.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

fn glob(p: &str) -> Result<Glob, PatternError> {
    GlobBuilder::new(p)
        .literal_separator(false)
        .backslash_escape(true)
        .empty_alternates(false)
        .build()
        .map_err(|source| PatternError {
            pattern: p.to_string(),
            source,
        })
}

impl fmt::Display for RoomPatterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sources.join(","))
    }
}

impl fmt::Debug for RoomPatterns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.sources).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_crosses_separators() {
        let p = RoomPatterns::new(["org/*"]).unwrap();
        assert!(p.matches("org/a/b"));
        assert!(p.matches("org/"));
        assert!(!p.matches("org"));
    }

    #[test]
    fn exact_names_match_only_themselves() {
        let p = RoomPatterns::new(["room-1"]).unwrap();
        assert!(p.matches("room-1"));
        assert!(!p.matches("room-10"));
        assert!(!p.matches("xroom-1"));
    }

    #[test]
    fn question_mark_and_classes() {
        let p = RoomPatterns::new(["team-?", "shard-[0-3]"]).unwrap();
        assert!(p.matches("team-a"));
        assert!(!p.matches("team-ab"));
        assert!(p.matches("shard-2"));
        assert!(!p.matches("shard-7"));
    }

    #[test]
    fn colon_and_unicode_rooms() {
        let p = RoomPatterns::new(["user:*", "café"]).unwrap();
        assert!(p.matches("user:42"));
        assert!(p.matches("user:"));
        assert!(p.matches("café"));
        assert!(!p.matches("cafe"));
    }

    #[test]
    fn escaped_star_is_literal() {
        let p = RoomPatterns::new([r"a\*"]).unwrap();
        assert!(p.matches("a*"));
        assert!(!p.matches("ab"));
    }

    #[test]
    fn empty_entries_are_ignored_and_empty_set_matches_nothing() {
        let p = RoomPatterns::new(["", "  "]).unwrap();
        assert!(p.is_empty());
        assert!(!p.matches(""));
        assert!(!p.matches("x"));
    }

    #[test]
    fn lone_star_matches_everything() {
        let p = RoomPatterns::new(["*"]).unwrap();
        assert!(p.matches("anything:at/all"));
        assert!(p.matches(""));
    }

    #[test]
    fn invalid_glob_is_an_error_naming_it() {
        let err = RoomPatterns::new(["ok", "bad["]).unwrap_err();
        assert!(err.to_string().contains("bad["), "{err}");
    }
}
