//! Room patterns of a token's `rooms` claim: a literal name, or `*` standing for any run of
//! characters (`team-*`, `*-public`, `*`).

/// Whether `room` matches `pattern`.
pub fn matches(pattern: &str, room: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = room.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_names_and_wildcards() {
        assert!(matches("team-1", "team-1"));
        assert!(!matches("team-1", "team-10"));
        assert!(matches("team-*", "team-10"));
        assert!(matches("team-*", "team-"));
        assert!(!matches("team-*", "teams"));
        assert!(matches("*", "anything"));
        assert!(matches("*-public", "x-public"));
        assert!(!matches("*-public", "x-public-not"));
        assert!(matches("a*b*c", "aXbYc"));
        assert!(!matches("a*b*c", "aXcYb"));
        assert!(!matches("ab*ba", "aba"), "the prefix and suffix may not overlap");
    }
}
