//! Unit tests of the participant's pull bookkeeping (the whole exchanges are checked against the
//! vectors in tests/mergeable_vectors.rs).

use super::stamps::merge_into;
use super::*;
use crate::protocol::json::parse;

fn stamp(text: &str) -> JsValue {
    parse(text, true).unwrap()
}

fn text(value: &JsValue) -> String {
    let mut out = String::new();
    crate::protocol::json::write_wire(value, &mut out);
    out
}

#[test]
fn merge_into_adds_levels_overwrites_cells_and_keeps_the_later_hlc() {
    let mut into = stamp(r#"[{"t":[{"r":[{"a":[1,"A"]}]}]}]"#);
    merge_into(&mut into, stamp(r#"[{"t":[{"r":[{"a":[2,"B"],"b":[3]}],"s":[{"c":[4]}]}],"u":[{}]},"H"]"#))
        .unwrap();
    assert_eq!(
        text(&into),
        r#"[{"t":[{"r":[{"a":[2,"B"],"b":[3]},""],"s":[{"c":[4]},""]},""],"u":[{},""]},"H"]"#
    );
    assert!(merge_into(&mut into, stamp(r#"[{"t":5}]"#)).is_none());
}

#[test]
fn answers_that_do_not_fit_their_request_abandon_the_pull() {
    let mut participant = Participant::new(MergeableStore::new("S"), u64::MAX, 3);
    let announce = crate::protocol::mergeable::frame::decode(r#"["tx",2,[1,0]]"#).unwrap();
    let reaction = participant.receive("c", &announce, 0);
    let request = crate::protocol::mergeable::frame::decode(&reaction.sends[0].remainder).unwrap();
    assert_eq!(request.kind, MessageType::GetTableDiff);
    let wrong =
        crate::protocol::mergeable::frame::decode(&format!("[\"{}\",0,[1,2]]", request.request_id.unwrap()))
            .unwrap();
    assert!(participant.receive("c", &wrong, 0).sends.is_empty());
    assert_eq!(participant.next_deadline_ms(), None);
    assert!(participant.pulls.is_empty());
}

#[test]
fn at_most_a_hundred_requests_wait() {
    let mut participant = Participant::new(MergeableStore::new("S"), u64::MAX, 4);
    let announce = crate::protocol::mergeable::frame::decode(r#"["tx",2,[1,0]]"#).unwrap();
    for i in 0..MAX_PENDING {
        assert_eq!(participant.receive(&format!("c{i}"), &announce, 0).sends.len(), 1);
    }
    assert!(participant.receive("late", &announce, 0).sends.is_empty());
    assert_eq!(participant.pending.len(), MAX_PENDING);
    participant.stop();
    assert_eq!(participant.next_deadline_ms(), None);
}

#[test]
fn ids_use_the_alphabet_and_differ() {
    let mut participant = Participant::new(MergeableStore::new("S"), u64::MAX, 5);
    let (a, b) = (participant.new_id(11), participant.new_id(11));
    assert_ne!(a, b);
    assert!(a.bytes().all(|c| ALPHABET.contains(&c)) && a.len() == 11);
}

const NOW: u64 = 1_700_000_100_000;

#[test]
fn changes_that_would_outgrow_the_limit_are_refused_whole_and_shrinking_ones_pass() {
    let diff = |text: &str| crate::protocol::mergeable::frame::decode(&format!("[\"tx\",3,{text}]")).unwrap();
    let mut participant = Participant::new(MergeableStore::new("S"), 120, 6);
    let small =
        participant.receive("c", &diff(r#"[[{"t":[{"r":[{"c":["x","NjEtLV-----67WEb"]}]}]}],[{}],1]"#), NOW);
    assert!(!small.refused_too_large && small.touched.cells.len() == 1);
    let used = participant.bytes;
    assert!(used > 0 && used < 120, "{used}");
    let big = format!(
        r#"[[{{"t":[{{"r":[{{"d":["{}","NjEtLV-----67WEc"]}}]}}]}}],[{{"v":[1,"NjEtLV-----67WEc"]}}],1]"#,
        "y".repeat(200)
    );
    let refused = participant.receive("c", &diff(&big), NOW);
    assert!(
        refused.refused_too_large && refused.touched.cells.is_empty() && refused.touched.values.is_empty()
    );
    assert_eq!(participant.bytes, used);
    // Over the limit already (say it was lowered): a deletion still passes and shrinks the store.
    participant.max_bytes = 10;
    let deletion = participant.receive(
        "c",
        &diff(r#"[[{"t":[{"r":[{"c":["\uFFFC","NjEtLV-----67WEd"]}]}]}],[{}],1]"#),
        NOW,
    );
    assert!(!deletion.refused_too_large && deletion.touched.cells.len() == 1);
    assert!(participant.bytes < used);
}
