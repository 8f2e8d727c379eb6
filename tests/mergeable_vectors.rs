//! The MergeableStore port checked against `../shared/spec/vectors/`, generated from the real
//! tinybase 10.0.1: one test per vector file, every case of it.

use std::path::PathBuf;

use partyd::protocol::mergeable::hash::{hash, hash_bytes};
use partyd::protocol::mergeable::hlc::{client_id, decode, encode, Clock};
use serde_json::Value;

/// Reads a vector file.
fn vectors(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/vectors").join(name);
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
        assert_eq!(client_id(case["uniqueId"].as_str().unwrap()), case["clientId"].as_str().unwrap(), "{case}");
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
                "next" => assert_eq!(clock.next(now), step["hlc"].as_str().unwrap(), "{}: {step}", sequence["name"]),
                "seen" => clock.seen(step["hlc"].as_str(), now),
                other => panic!("unknown op {other}"),
            }
            let expected = (step["lastLogicalTime"].as_u64().unwrap(), step["lastCounter"].as_i64().unwrap());
            assert_eq!(clock.state(), expected, "{}: {step}", sequence["name"]);
        }
    }
}
