//! Where a request path leads: PartyKit's routing of `/parties/<party>/<room>[/…]` and
//! `/party/<room>[/…]` (the `main` party), on the raw (not percent-decoded) path.

/// The party that `/party/<room>` addresses.
pub const DEFAULT_PARTY: &str = "main";

/// A request path that addresses a room.
#[derive(Debug, PartialEq, Eq)]
pub struct RoomRoute<'a> {
    /// The party name, compared exactly (case-sensitive).
    pub party: &'a str,
    /// The raw room segment: `q%41` stays `q%41`.
    pub room: &'a str,
}

/// Splits a raw path into party and room; `None` for paths outside every room.
pub fn room_route(path: &str) -> Option<RoomRoute<'_>> {
    if let Some(rest) = path.strip_prefix("/parties/") {
        let (party, rest) = rest.split_once('/')?;
        let room = rest.split('/').next().unwrap_or(rest);
        return Some(RoomRoute { party, room });
    }
    let rest = path.strip_prefix("/party/")?;
    let room = rest.split('/').next().unwrap_or(rest);
    Some(RoomRoute { party: DEFAULT_PARTY, room })
}

/// The party of `/parties/<party>` or `/parties/<party>/` (where multiplexed sockets open).
pub fn party_only(path: &str) -> Option<&str> {
    let party = path.strip_prefix("/parties/")?;
    let party = party.strip_suffix('/').unwrap_or(party);
    (!party.is_empty() && !party.contains('/')).then_some(party)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Option<(&str, &str)> {
        room_route(path).map(|r| (r.party, r.room))
    }

    #[test]
    fn routes_rooms_and_everything_below_them() {
        assert_eq!(route("/parties/main/r"), Some(("main", "r")));
        assert_eq!(route("/parties/main/r/store"), Some(("main", "r")));
        assert_eq!(route("/parties/main/r/a/b/store"), Some(("main", "r")));
        assert_eq!(route("/parties/custom/q%41/x"), Some(("custom", "q%41")));
        assert_eq!(route("/party/r/store"), Some(("main", "r")));
        assert_eq!(route("/parties/main/store"), Some(("main", "store")));
    }

    #[test]
    fn paths_outside_rooms_have_no_route_and_empty_rooms_stay_empty() {
        assert_eq!(route("/"), None);
        assert_eq!(route("/parties"), None);
        assert_eq!(route("/parties/main"), None);
        assert_eq!(route("/partiesx/main/r"), None);
        assert_eq!(route("/parties/main/"), Some(("main", "")));
        assert_eq!(route("/parties//r"), Some(("", "r")));
        assert_eq!(party_only("/parties/sync"), Some("sync"));
        assert_eq!(party_only("/parties/sync/"), Some("sync"));
        assert_eq!(party_only("/parties/sync/r"), None);
        assert_eq!(party_only("/parties/"), None);
    }
}
