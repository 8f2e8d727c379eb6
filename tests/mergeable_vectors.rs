//! The MergeableStore port checked against `tests/vectors/mergeable/`, generated from the real
//! tinybase 10.0.1 by the script beside them: one test per vector file, every case of it.

use std::path::PathBuf;

use partyd::protocol::mergeable::hash::{hash, hash_bytes};
use partyd::protocol::mergeable::hlc::{client_id, decode, encode, Clock};
use serde_json::Value;

/// The path of a vector file in the repository.
fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/mergeable").join(name)
}

/// Reads a vector file.
fn vectors(name: &str) -> Value {
    let path = vector_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).expect("vector JSON")
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn hash_json() {
    let file = vectors("hash.json");
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() > 5);
    for case in cases {
        let expected = case["hash"].as_u64().unwrap() as u32;
        let bytes = hex(case["utf8"].as_str().unwrap());
        assert_eq!(hash_bytes(&bytes), expected, "{case}");
        // Cases with lone UTF-16 surrogates give `inputUtf16` instead (TextEncoder makes them U+FFFD).
        match case["input"].as_str() {
            Some(input) => assert_eq!(hash(input), expected, "{case}"),
            None => assert!(case["inputUtf16"].is_array(), "{case}"),
        }
    }
}

#[test]
fn hlc_json() {
    let file = vectors("hlc.json");
    for case in file["clientIds"].as_array().unwrap() {
        assert_eq!(
            client_id(case["uniqueId"].as_str().unwrap()),
            case["clientId"].as_str().unwrap(),
            "{case}"
        );
    }
    for case in file["encodes"].as_array().unwrap() {
        let (time, counter) = (case["time"].as_u64().unwrap(), case["counter"].as_u64().unwrap());
        let hlc = encode(time, counter, &client_id(case["uniqueId"].as_str().unwrap()));
        assert_eq!(hlc, case["hlc"].as_str().unwrap(), "{case}");
        let (t, c, id) = decode(&hlc);
        assert_eq!((t, c, id), (time, counter, case["decoded"][2].as_str().unwrap()), "{case}");
    }
    let sequences = file["sequences"].as_array().unwrap();
    assert!(!sequences.is_empty());
    for sequence in sequences {
        let mut clock = Clock::new(sequence["uniqueId"].as_str().unwrap());
        for step in sequence["steps"].as_array().unwrap() {
            let now = step["now"].as_u64().unwrap();
            match step["op"].as_str().unwrap() {
                "next" => {
                    assert_eq!(clock.next(now), step["hlc"].as_str().unwrap(), "{}: {step}", sequence["name"])
                }
                "seen" => clock.seen(step["hlc"].as_str(), now),
                other => panic!("unknown op {other}"),
            }
            let expected = (step["lastLogicalTime"].as_u64().unwrap(), step["lastCounter"].as_i64().unwrap());
            assert_eq!(clock.state(), expected, "{}: {step}", sequence["name"]);
        }
    }
}

/// The message as the wire decodes it: parsed like `JSON.parse`, "\uFFFC" strings become undefined.
fn decoded(value: &Value) -> partyd::protocol::json::JsValue {
    partyd::protocol::json::parse(&value.to_string(), true).expect("vector JSON parses")
}

/// The same JSON text our encoder writes (JavaScript numbers and key order), for comparisons.
fn js_text(value: &Value) -> String {
    let mut out = String::new();
    partyd::protocol::json::write_wire(&decoded(value), &mut out);
    out
}

#[test]
fn apply_json() {
    use partyd::protocol::mergeable::tree::{MergeableStore, Mode};
    let file = vectors("apply.json");
    let now = file["now"].as_u64().unwrap();
    let mut base = MergeableStore::new(file["base"]["uniqueId"].as_str().unwrap());
    base.merge(&decoded(&file["base"]["content"]), Mode::Content, now).expect("the base content loads");
    assert_eq!(base.encoded_content(), js_text(&file["base"]["content"]));
    let cases = file["cases"].as_array().unwrap();
    assert!(cases.len() >= 18);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut store = base.clone();
        let result = store.merge(&decoded(&case["changes"]), Mode::Changes, now);
        assert_eq!(result.is_err(), name.contains("reject"), "{name}: {result:?}");
        assert_eq!(store.encoded_content(), js_text(&case["contentAfter"]), "{name}");
        assert_eq!(store.clock.next(now), case["nextHlc"].as_str().unwrap(), "{name}");
    }
    for case in file["setContent"]["cases"].as_array().unwrap() {
        let mut store = MergeableStore::new("loader");
        store.merge(&decoded(&case["input"]), Mode::Content, now).unwrap();
        assert_eq!(store.encoded_content(), js_text(&case["contentAfter"]));
        let hashes = case["contentHashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_u64().unwrap() as u32)
            .collect::<Vec<_>>();
        assert_eq!(store.content_hashes().to_vec(), hashes);
    }
}

#[test]
fn merges_json() {
    use partyd::protocol::mergeable::tree::{MergeableStore, Mode};
    let file = vectors("merges.json");
    let pairs = file["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 5);
    for pair in pairs {
        let name = pair["name"].as_str().unwrap();
        let now = ["a", "b"]
            .iter()
            .flat_map(|side| {
                pair[side]["steps"].as_array().unwrap().iter().map(|step| step["now"].as_u64().unwrap())
            })
            .max()
            .unwrap();
        let load = |side: &str| {
            let mut store = MergeableStore::new(pair[side]["uniqueId"].as_str().unwrap());
            store.merge(&decoded(&pair["before"][side]), Mode::Content, now).unwrap();
            store
        };
        let (mut a, mut b) = (load("a"), load("b"));
        let (a_before, b_before) = (decoded(&pair["before"]["a"]), decoded(&pair["before"]["b"]));
        a.merge(&b_before, Mode::Changes, now).unwrap();
        b.merge(&a_before, Mode::Changes, now).unwrap();
        assert_eq!(a.encoded_content(), js_text(&pair["after"]["a"]["encodedContent"]), "{name}: A");
        assert_eq!(b.encoded_content(), js_text(&pair["after"]["b"]["encodedContent"]), "{name}: B");
        assert_eq!(a.content_hashes(), b.content_hashes(), "{name}: both sides agree");
    }
}

#[test]
fn diffs_json() {
    use partyd::protocol::mergeable::tree::{MergeableStore, Mode};
    let file = vectors("diffs.json");
    let pairs = file["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 5);
    let text = |value: &partyd::protocol::json::JsValue| {
        let mut out = String::new();
        partyd::protocol::json::write_wire(value, &mut out);
        out
    };
    for pair in pairs {
        let name = pair["name"].as_str().unwrap();
        let now = 1_700_000_100_000;
        let load = |side: &str| {
            let mut store = MergeableStore::new(pair[side]["uniqueId"].as_str().unwrap());
            store.merge(&decoded(&pair["before"][side]["encodedContent"]), Mode::Content, now).unwrap();
            store
        };
        let (mut a, mut b) = (load("a"), load("b"));
        for (requester_is_a, pull) in [(true, &pair["aPullsB"]), (false, &pair["bPullsA"])] {
            let (requester, responder) = if requester_is_a { (&mut a, &b) } else { (&mut b, &a) };
            for exchange in pull["exchanges"].as_array().unwrap() {
                let body = decoded(&exchange["body"]);
                let response = match exchange["message"].as_u64().unwrap() {
                    4 => responder.table_diff(&body),
                    5 => responder.row_diff(&body),
                    6 => responder.cell_diff(&body),
                    7 => responder.value_diff(&body),
                    other => panic!("message {other}"),
                };
                assert_eq!(text(&response), js_text(&exchange["response"]), "{name}: {}", exchange["name"]);
            }
            // The requester asks with its own hashes (for rows and cells: of what the previous
            // answer said differs); check it computes the bodies it sent.
            let mut previous: Option<&Value> = None;
            for exchange in pull["exchanges"].as_array().unwrap() {
                let differing = || decoded(&previous.expect("a previous answer")[1]);
                let asked = match exchange["message"].as_u64().unwrap() {
                    4 => requester.table_hashes(),
                    5 => requester.row_hashes(&differing()),
                    6 => requester.cell_hashes(&differing()),
                    _ => requester.value_hashes(),
                };
                assert_eq!(text(&asked), js_text(&exchange["body"]), "{name}: body of {}", exchange["name"]);
                previous = Some(&exchange["response"]);
            }
            requester.merge(&decoded(&pull["changes"]), Mode::Changes, now).unwrap();
        }
        assert_eq!(a.encoded_content(), js_text(&pair["after"]["a"]["encodedContent"]), "{name}: A after");
        assert_eq!(b.encoded_content(), js_text(&pair["after"]["b"]["encodedContent"]), "{name}: B after");
    }
}

#[test]
fn stores_json() {
    use partyd::protocol::json::JsValue;
    use partyd::protocol::mergeable::tree::{MergeableStore, Mode};
    let file = vectors("stores.json");
    let scenarios = file["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 5);
    let text = |value: &JsValue| {
        let mut out = String::new();
        partyd::protocol::json::write_wire(value, &mut out);
        out
    };
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap();
        let mut store = MergeableStore::new(scenario["uniqueId"].as_str().unwrap());
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let now = step["now"].as_u64().unwrap();
            let op = step["op"].as_array().unwrap();
            let arg = |n: usize| op[n].as_str().unwrap();
            let value = op.last().map(decoded).unwrap();
            let primitive = !matches!(value, JsValue::Array(_) | JsValue::Object(_));
            // Local writes of single cells and values; other Store operations are replayed from
            // their recorded changes (as the reference model does: the server needs no more).
            let touched = match arg(0) {
                "setCell" if primitive => store.set_cell(arg(1), arg(2), arg(3), value, now),
                "delCell" => store.set_cell(arg(1), arg(2), arg(3), JsValue::Undefined, now),
                "setValue" if primitive => store.set_value(arg(1), value, now),
                "delValue" => store.set_value(arg(1), JsValue::Undefined, now),
                _ => store
                    .merge(&decoded(&step["changes"]), Mode::Changes, now)
                    .expect("recorded changes apply"),
            };
            let at = format!("{name} step {i} {}", arg(0));
            assert_eq!(
                text(&store.transaction_changes(&touched, false)),
                js_text(&step["changes"]),
                "{at}: changes"
            );
            assert_eq!(
                text(&store.transaction_changes(&touched, true)),
                js_text(&step["changesWithHashes"]),
                "{at}: with hashes"
            );
            let hashes: Vec<u32> = step["contentHashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(store.content_hashes().to_vec(), hashes, "{at}: content hashes");
        }
        assert_eq!(store.encoded_content(), js_text(&scenario["final"]["encodedContent"]), "{name}: final");
        assert_eq!(
            text(&store.table_hashes()),
            js_text(&scenario["final"]["tableHashes"]),
            "{name}: table hashes"
        );
        assert_eq!(
            text(&store.value_hashes()),
            js_text(&scenario["final"]["valueHashes"]),
            "{name}: value hashes"
        );
    }
}

#[test]
fn values_json() {
    use partyd::protocol::json::{parse, write_stored, JsValue};
    use partyd::protocol::mergeable::tree::leaf_hash;
    // Parsed with partyd's JavaScript-exact parser: serde_json rounds some big numbers differently.
    let file = parse(&std::fs::read_to_string(vector_path("values.json")).unwrap(), true).unwrap();
    let field = |value: &JsValue, key: &str| -> JsValue {
        let JsValue::Object(members) = value else { panic!("not an object") };
        members.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or(JsValue::Undefined)
    };
    let string = |value: JsValue| match value {
        JsValue::String(s) => s,
        other => panic!("not a string: {other:?}"),
    };
    let number = |value: JsValue| match value {
        JsValue::Number(n) => n as u32,
        other => panic!("not a number: {other:?}"),
    };
    let hlc = string(field(&file, "hlc"));
    let JsValue::Array(cases) = field(&file, "cases") else { panic!() };
    assert!(cases.len() >= 30);
    for case in &cases {
        let name = string(field(case, "name"));
        let value = field(case, "value");
        let mut json = String::new();
        write_stored(&value, &mut json);
        assert_eq!(json, string(field(case, "json")), "{name}");
        assert_eq!(leaf_hash(&value, &hlc), number(field(case, "hash")), "{name}");
    }
    let JsValue::Array(objects) = field(&file, "objects") else { panic!() };
    for case in &objects {
        let stored = field(case, "stored");
        assert_eq!(
            leaf_hash(&stored, &string(field(case, "hlc"))),
            number(field(case, "hash")),
            "{}",
            string(field(case, "name"))
        );
    }
}

#[test]
fn every_message_in_the_relay_and_persistence_transcripts_is_valid() {
    use partyd::protocol::json::parse;
    use partyd::protocol::mergeable::message::validate;
    let mut checked = 0;
    for name in ["transcripts/ws-relay.json", "transcripts/ws-persist.json"] {
        let file = vectors(name);
        for event in file["events"].as_array().unwrap() {
            for direction in ["in", "out"] {
                let Some(frame) = event[direction].as_str() else { continue };
                let (_, remainder) =
                    frame.split_once('\n').expect("legacy framing: prefix, newline, message");
                let message =
                    parse(remainder, true).unwrap_or_else(|error| panic!("{name}: {error}: {remainder}"));
                if let Err(error) = validate(&message) {
                    panic!("{name}: {error}: {remainder}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} messages were checked");
}

#[test]
fn the_messages_that_ws_errors_shows_closed_with_1007_are_invalid_and_the_others_valid() {
    use partyd::protocol::json::parse;
    use partyd::protocol::mergeable::message::validate;
    let file = vectors("transcripts/ws-errors.json");
    let events = file["events"].as_array().unwrap();
    let (mut invalid, mut valid) = (0, 0);
    for (i, event) in events.iter().enumerate() {
        let Some(frame) = event["in"].as_str() else { continue };
        let next = events[i + 1..].iter().find(|later| later["conn"] == event["conn"]);
        let closed_invalid = next.is_some_and(|next| next["code"] == 1007 && next["reason"] == "tinybase:14");
        let fragment_or_multiplexed =
            frame.split('\n').nth(1).is_some_and(|second| second.len() == 16 && !second.starts_with('['))
                || frame.starts_with("M\n");
        if fragment_or_multiplexed {
            continue;
        }
        let parsed = frame.split_once('\n').and_then(|(_, remainder)| parse(remainder, true).ok());
        let is_valid = parsed.as_ref().is_some_and(|message| validate(message).is_ok());
        assert_eq!(is_valid, !closed_invalid, "{frame:?}");
        if closed_invalid {
            invalid += 1
        } else {
            valid += 1
        }
    }
    assert!(invalid >= 8 && valid >= 3, "{invalid} invalid, {valid} valid");
}

/// The participant `S` runs every pull of diffs.json itself: on the peer's ContentHashes it sends
/// exactly the recorded requests, one at a time, addressed to that peer, and ends with the
/// recorded store.
#[test]
fn the_participant_pulls_as_diffs_json_records() {
    use partyd::protocol::mergeable::frame::decode;
    use partyd::protocol::mergeable::participant::{Participant, Target};
    use partyd::protocol::mergeable::tree::{MergeableStore, Mode};
    let file = vectors("diffs.json");
    let now = 1_700_000_100_000;
    for pair in file["pairs"].as_array().unwrap() {
        let name = pair["name"].as_str().unwrap();
        for (me, peer, pull) in [("a", "b", &pair["aPullsB"]), ("b", "a", &pair["bPullsA"])] {
            let load = |side: &str| {
                let mut store = MergeableStore::new(pair[side]["uniqueId"].as_str().unwrap());
                store.merge(&decoded(&pair["before"][side]["encodedContent"]), Mode::Content, now).unwrap();
                store
            };
            let mut participant = Participant::new(load(me), u64::MAX, 7);
            let responder = load(peer);
            let hashes = pull["otherHashes"].to_string();
            let announce = decode(&format!("[\"tx1\",2,{hashes}]")).unwrap();
            let mut reaction = participant.receive("peer", &announce, now);
            for exchange in pull["exchanges"].as_array().unwrap() {
                assert_eq!(reaction.sends.len(), 1, "{name}: one request at a time");
                let sent = reaction.sends.remove(0);
                assert_eq!(sent.to, Target::Client("peer".into()), "{name}");
                let request = decode(&sent.remainder).unwrap();
                let request_id = request.request_id.clone().unwrap();
                assert!(request_id.starts_with("tx1."), "{name}: transaction id reused: {request_id}");
                assert_eq!(request.kind.number() as u64, exchange["message"].as_u64().unwrap(), "{name}");
                let mut body = String::new();
                partyd::protocol::json::write_wire(&request.body, &mut body);
                assert_eq!(body, js_text(&exchange["body"]), "{name}: body of {}", exchange["name"]);
                let response = match request.kind.number() {
                    4 => responder.table_diff(&request.body),
                    5 => responder.row_diff(&request.body),
                    6 => responder.cell_diff(&request.body),
                    _ => responder.value_diff(&request.body),
                };
                let mut text = String::new();
                partyd::protocol::json::write_wire(&response, &mut text);
                let answer = decode(&format!("[\"{request_id}\",0,{text}]")).unwrap();
                // An answer from anyone but the peer is ignored.
                assert!(participant.receive("intruder", &answer, now).sends.is_empty());
                reaction = participant.receive("peer", &answer, now);
            }
            assert!(reaction.sends.is_empty(), "{name}: nothing after the last answer");
            assert_eq!(participant.next_deadline_ms(), None, "{name}: no request left waiting");
            let expected = pair["after"][me]["encodedContent"].clone();
            assert_eq!(participant.store.encoded_content(), js_text(&expected), "{name}: {me} after pulling");
        }
    }
}

/// Start-up (spec §5.1): S asks everyone for hashes; with no answer within the request timeout
/// it abandons the pull and announces its own hashes; with an answer it pulls from the first
/// answerer and announces afterwards.
#[test]
fn the_participant_starts_up_with_or_without_answers() {
    use partyd::protocol::mergeable::frame::decode;
    use partyd::protocol::mergeable::message::MessageType;
    use partyd::protocol::mergeable::participant::{Participant, Target, REQUEST_TIMEOUT_MS};
    use partyd::protocol::mergeable::tree::MergeableStore;
    let now = 1_700_000_100_000;
    let mut participant = Participant::new(MergeableStore::new("S"), u64::MAX, 1);
    let started = participant.start(now);
    assert_eq!(started.sends.len(), 1);
    assert_eq!(started.sends[0].to, Target::Everyone);
    let ask = decode(&started.sends[0].remainder).unwrap();
    assert_eq!(ask.kind, MessageType::GetContentHashes);
    assert_eq!(participant.next_deadline_ms(), Some(now + REQUEST_TIMEOUT_MS));
    assert!(participant.expire(now + REQUEST_TIMEOUT_MS - 1).sends.is_empty());
    let expired = participant.expire(now + REQUEST_TIMEOUT_MS);
    assert_eq!(expired.sends.len(), 1);
    assert_eq!(expired.sends[0].to, Target::Everyone);
    assert!(expired.sends[0].remainder.ends_with(",2,[0,0]]"), "{}", expired.sends[0].remainder);

    // Answered: S pulls the answerer's value, then announces the merged hashes.
    let mut participant = Participant::new(MergeableStore::new("S"), u64::MAX, 2);
    let ask = decode(&participant.start(now).sends[0].remainder).unwrap();
    let mut client = MergeableStore::new("client");
    client.set_value("open", partyd::protocol::json::JsValue::Bool(true), now);
    let [tables, values] = client.content_hashes();
    let answer = decode(&format!("[\"{}\",0,[{tables},{values}]]", ask.request_id.unwrap())).unwrap();
    let reaction = participant.receive("client", &answer, now);
    let request = decode(&reaction.sends[0].remainder).unwrap();
    assert_eq!(
        (request.kind, &reaction.sends[0].to),
        (MessageType::GetValueDiff, &Target::Client("client".into()))
    );
    let mut diff = String::new();
    partyd::protocol::json::write_wire(&client.value_diff(&request.body), &mut diff);
    let answer = decode(&format!("[\"{}\",0,{diff}]", request.request_id.unwrap())).unwrap();
    let reaction = participant.receive("client", &answer, now);
    assert_eq!(reaction.touched.values, vec!["open".to_owned()]);
    assert_eq!(reaction.sends.len(), 1);
    assert!(reaction.sends[0].remainder.ends_with(&format!(",2,[{tables},{values}]]")));
    assert_eq!(participant.store.content_hashes(), client.content_hashes());
}
