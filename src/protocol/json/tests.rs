//! Tests of the JavaScript-exact JSON: parsing, key order, numbers and strings as JS prints them.

use super::*;
use proptest::prelude::*;

fn stored(text: &str) -> String {
    let mut out = String::new();
    write_stored(&parse(text, false).unwrap(), &mut out);
    out
}

#[test]
fn numbers_print_as_javascript_prints_them() {
    // Expected strings from `node -e 'console.log(JSON.stringify(JSON.parse(x)))'` for each input.
    let cases = [
        ("-0", "0"),
        ("1E21", "1e+21"),
        ("5.000", "5"),
        ("1.0", "1"),
        ("-2.50", "-2.5"),
        ("1E+2", "100"),
        ("9007199254740993", "9007199254740992"),
        ("123456789012345678901", "123456789012345680000"),
        ("100000000000000000000", "100000000000000000000"),
        ("1e-400", "0"),
        ("1.5e-7", "1.5e-7"),
        ("1e-7", "1e-7"),
        ("0.000001", "0.000001"),
        ("5e-324", "5e-324"),
        ("1.7976931348623157e+308", "1.7976931348623157e+308"),
        ("0.1", "0.1"),
        ("1e400", "null"),
        ("-1e999", "null"),
    ];
    for (input, expected) in cases {
        assert_eq!(stored(input), expected, "{input}");
    }
}

#[test]
fn strings_print_as_json_stringify_prints_them() {
    let input = r#""q\" b\\ \b\t\n\f\r \u0000\u001f\u007f / \u2028\u2029 \ufffc \ufffd 😀 \ud83d\ude00""#;
    assert_eq!(
        stored(input),
        "\"q\\\" b\\\\ \\b\\t\\n\\f\\r \\u0000\\u001f\u{7f} / \u{2028}\u{2029} \u{fffc} \u{fffd} 😀 😀\""
    );
}

#[test]
fn lone_surrogates_parse_and_print_as_json_stringify_prints_them() {
    // Expected strings from `node -e 'console.log(JSON.stringify(JSON.parse(x)))'` for each input:
    // JavaScript strings are UTF-16, any code unit may stand alone, and JSON.stringify writes a
    // lone surrogate as a lowercase `\u` escape.
    let cases = [
        (r#""\ud800""#, r#""\ud800""#),
        (r#""x\uD83D""#, r#""x\ud83d""#),
        (r#""\udc00""#, r#""\udc00""#),
        (r#""\udbff\udfff""#, "\"\u{10FFFF}\""),
        (r#""\ud83d\u0041""#, r#""\ud83dA""#),
        (r#""\ud83d\ud83d\ude00""#, "\"\\ud83d😀\""),
        (r#""\ude00\ud83d""#, r#""\ude00\ud83d""#),
        (r#""\ud83d\n\ude00""#, r#""\ud83d\n\ude00""#),
        (r#""\ud83d\\ude00""#, r#""\ud83d\\ude00""#),
        (r#""\ud83d😀""#, "\"\\ud83d😀\""),
        (r#"{"\ud800":1,"\udbff":2,"\ud800":3}"#, r#"{"\ud800":3,"\udbff":2}"#),
        (
            r#"["\ud800",{"\udfff":["\udbff"]},"a\ud800b\udc00"]"#,
            r#"["\ud800",{"\udfff":["\udbff"]},"a\ud800b\udc00"]"#,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(stored(input), expected, "{input}");
    }
    // Different lone surrogates are different strings, and none is U+FFFD.
    let JsValue::Object(members) = parse(r#"{"\ud800":1,"\udc00":2,"\ufffd":3,"\ud800":4}"#, false).unwrap()
    else {
        panic!()
    };
    assert_eq!(members.len(), 3);
    // The broadcast form keeps them too, beside decoded markers.
    let text = "[\"\\ud800\",{\"\\udc00\":\"\u{FFFC}\"}]";
    let mut wire = String::new();
    write_wire(&parse(text, true).unwrap(), &mut wire);
    assert_eq!(wire, text);
}

#[test]
fn the_characters_that_carry_lone_surrogates_inside_partyd_stay_plain_text() {
    // A lone surrogate is held in a Rust string with U+FDD0 and a private-use character, so those
    // characters, escaped or raw (the last two items, the last key), alone or beside a lone
    // surrogate, must still read and print as themselves (JSON.stringify writes them raw).
    let input = "[\"\\ufdd0\",\"\\ufdd0\\ue000\",\"\\ue000\",\"\\ufdd0\\ufdd0\",\"\\ufdd0\\ud800\",\"\\ud800\\ufdd0\",\"\u{fdd0}\u{e000}\",\"\u{fdd0}\"]";
    assert_eq!(
        stored(input),
        "[\"\u{fdd0}\",\"\u{fdd0}\u{e000}\",\"\u{e000}\",\"\u{fdd0}\u{fdd0}\",\"\u{fdd0}\\ud800\",\"\\ud800\u{fdd0}\",\"\u{fdd0}\u{e000}\",\"\u{fdd0}\"]"
    );
    let keys = "{\"\\ufdd0\":1,\"\\ufdd0\\ue000\":2,\"\\ud800\":3,\"\\ufdd0\\ud800\":4,\"\\ufdd0\\ufdd0\":5,\"\\ue000\":6,\"\u{fdd0}\":7}";
    let JsValue::Object(members) = parse(keys, false).unwrap() else { panic!() };
    assert_eq!(members.len(), 6, "{members:?}");
    assert_eq!(
        stored(keys),
        "{\"\u{fdd0}\":7,\"\u{fdd0}\u{e000}\":2,\"\\ud800\":3,\"\u{fdd0}\\ud800\":4,\"\u{fdd0}\u{fdd0}\":5,\"\u{e000}\":6}"
    );
}

#[test]
fn odd_but_legal_json_reads_as_javascript_reads_it() {
    // Each expected string from `node -e 'console.log(JSON.stringify(JSON.parse(x)))'`.
    let cases = [
        (r#""\u0000\u2028\u2029\u007f""#, "\"\\u0000\u{2028}\u{2029}\u{7f}\""),
        (r#"{"\u0000":1,"\u2028":2}"#, "{\"\\u0000\":1,\"\u{2028}\":2}"),
        (r#"{"a":1,"\u0061":2,"b":{"c":1},"b":{"d":2}}"#, r#"{"a":2,"b":{"d":2}}"#),
        (r#"{"__proto__":1,"constructor":2}"#, r#"{"__proto__":1,"constructor":2}"#),
        (
            r#"[-0,-0.0,0e5,-1e-400,1.7976931348623157e308,5e-324]"#,
            "[0,0,0,0,1.7976931348623157e+308,5e-324]",
        ),
        (r#""\ud800\u0000\ud800""#, r#""\ud800\u0000\ud800""#),
    ];
    for (input, expected) in cases {
        assert_eq!(stored(input), expected, "{input}");
    }
    let deep = "[".repeat(MAX_DEPTH) + "\"\\udfff\"" + &"]".repeat(MAX_DEPTH);
    assert_eq!(stored(&deep), deep, "nesting within the limit, lone surrogate at the bottom");
}

#[test]
fn objects_take_javascript_key_order_and_the_last_duplicate() {
    assert_eq!(
        stored(r#"{"b":1,"10":2,"a":3,"9":4,"01":5,"-1":6,"4294967295":7,"4294967294":8}"#),
        r#"{"9":4,"10":2,"4294967294":8,"b":1,"a":3,"01":5,"-1":6,"4294967295":7}"#
    );
    assert_eq!(stored(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    let many: String = (0..40).map(|i| format!("\"k{i}\":{i},")).collect::<String>() + "\"k3\":\"last\"";
    let value = parse(&format!("{{{many}}}"), false).unwrap();
    let JsValue::Object(members) = value else { panic!() };
    assert_eq!(members.len(), 40);
    assert_eq!(members[3], ("k3".to_owned(), JsValue::String("last".into())));
}

#[test]
fn the_marker_is_decoded_only_in_values_and_only_when_asked() {
    let text = "{\"\u{fffc}\":[\"\u{fffc}\",{\"k\":\"\u{fffc}\"}]}";
    let decoded = parse(text, true).unwrap();
    let mut out = String::new();
    write_stored(&decoded, &mut out);
    assert_eq!(out, "{\"\u{fffc}\":[null,{}]}");
    out.clear();
    write_wire(&decoded, &mut out);
    assert_eq!(out, text);
    assert_eq!(stored(text), text, "without decoding it is a plain string");
}

#[test]
fn invalid_json_is_refused() {
    let long_nest = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
    for bad in [
        "",
        " ",
        "nul",
        "NaN",
        "Infinity",
        "undefined",
        "'a'",
        "[1,]",
        "{\"a\":1,}",
        "[1] x",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "\"\\x\"",
        "\"a\nb\"",
        "\u{feff}[]",
        "\u{a0}[]",
        "[1 2]",
        "{\"a\" 1}",
        "{1:2}",
        &long_nest,
    ] {
        assert!(parse(bad, false).is_err(), "{bad:?} must not parse");
    }
    for good in [" [ 1 , {} ] ", "\t\n\r0", "-0.0e-0", "\"\\/\"", "[[[[]]]]"] {
        assert!(parse(good, false).is_ok(), "{good:?} must parse");
    }
}

#[test]
fn array_indices_are_canonical_decimals_below_2_to_32_minus_1() {
    assert_eq!(is_array_index("0"), Some(0));
    assert_eq!(is_array_index("4294967294"), Some(4_294_967_294));
    for not in ["", "01", "-1", "+1", "1.0", "4294967295", "99999999999", "1e3", " 1"] {
        assert_eq!(is_array_index(not), None, "{not:?}");
    }
}

#[test]
fn more_numbers_agree_with_node() {
    // Printed by: node -e 'for (const x of process.argv.slice(1)) console.log(x, JSON.stringify(JSON.parse(x)))' \
    //   999999999999999999999 0.0000001234 123.456e5 2.2250738585072014e-308 4.9406564584124654e-324 \
    //   2.4703282292062327e-324 2.4703282292062328e-324 1.00000000000000011102230246251565404236316680908203125 \
    //   0.30000000000000004 -1.5e-9 12345678901234567890123e-3 1e-6 9.999999999999999e20 1e+308   (node v20+)
    let cases = [
        ("999999999999999999999", "1e+21"),
        ("0.0000001234", "1.234e-7"),
        ("123.456e5", "12345600"),
        ("2.2250738585072014e-308", "2.2250738585072014e-308"),
        ("4.9406564584124654e-324", "5e-324"),
        ("2.4703282292062327e-324", "0"),
        ("2.4703282292062328e-324", "5e-324"),
        // Exactly halfway between 1 and the next double: rounds to even.
        ("1.00000000000000011102230246251565404236316680908203125", "1"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("-1.5e-9", "-1.5e-9"),
        ("12345678901234567890123e-3", "12345678901234567000"),
        ("1e-6", "0.000001"),
        ("9.999999999999999e20", "999999999999999900000"),
        ("1e+308", "1e+308"),
    ];
    for (input, expected) in cases {
        assert_eq!(stored(input), expected, "{input}");
    }
    let mut out = String::new();
    for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0] {
        write_number(n, &mut out);
        out.push(' ');
    }
    assert_eq!(out, "null null null 0 ");
}

#[test]
fn every_escape_parses() {
    let value = parse(r#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00\uFFFC""#, false).unwrap();
    assert_eq!(value, JsValue::String("\"\\/\u{8}\u{c}\n\r\tAé€😀\u{FFFC}".into()));
    // An escaped marker is the marker too (JSON.parse sees the same string).
    assert_eq!(
        parse(r#"["\uFFFC","\ufffc"]"#, true).unwrap(),
        JsValue::Array(vec![JsValue::Undefined, JsValue::Undefined])
    );
    assert_eq!(
        parse("\"\u{FFFC}x\"", true).unwrap(),
        JsValue::String("\u{FFFC}x".into()),
        "only the exact marker"
    );
    for bad in [r#""\u12""#, r#""\u12G4""#, r#""\U0041""#, r#""\'""#, "\"\\", "\"\t\""] {
        assert!(parse(bad, false).is_err(), "{bad:?}");
    }
}

#[test]
fn nesting_is_limited_without_overflowing_the_stack() {
    let nest = |n: usize| "[".repeat(n) + &"]".repeat(n);
    assert!(parse(&nest(MAX_DEPTH + 1), false).is_ok(), "MAX_DEPTH levels below the top one are fine");
    assert!(parse(&nest(MAX_DEPTH + 2), false).is_err());
    assert!(parse(&"[{\"a\":".repeat(1_000_000), false).is_err());
    assert!(parse(&"[".repeat(1_000_000), true).is_err());
}

#[test]
fn big_objects_parse_in_linear_time_with_javascript_duplicates() {
    // 200,000 members, every key given twice: a quadratic duplicate check would take minutes.
    let n = 100_000;
    let mut text = String::from("{");
    for pass in 0..2 {
        for i in 0..n {
            text.push_str(&format!("\"k{i}\":{},", pass * n + i));
        }
    }
    text.push_str("\"5\":0}");
    let JsValue::Object(members) = parse(&text, false).unwrap() else { panic!() };
    assert_eq!(members.len(), n + 1);
    assert_eq!(members[0], ("5".to_owned(), JsValue::Number(0.0)), "array-index keys first");
    assert_eq!(members[1], ("k0".to_owned(), JsValue::Number(n as f64)), "last value at the first position");
    assert_eq!(members[n], (format!("k{}", n - 1), JsValue::Number((2 * n - 1) as f64)));
}

fn js_value() -> impl Strategy<Value = JsValue> {
    let leaf = prop_oneof![
        Just(JsValue::Null),
        any::<bool>().prop_map(JsValue::Bool),
        any::<f64>().prop_filter("finite", |n| n.is_finite()).prop_map(JsValue::Number),
        surrogates::arbitrary(0..12).prop_map(JsValue::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(JsValue::Array),
            proptest::collection::btree_map(
                prop_oneof!["[a-z0-9]{0,3}", surrogates::arbitrary(0..3)],
                inner,
                0..6
            )
            .prop_map(|members| JsValue::Object(members.into_iter().collect())),
        ]
    })
}

/// Values as a change may carry them: with `undefined` anywhere inside, but no string equal to the marker.
fn js_value_with_undefined() -> impl Strategy<Value = JsValue> {
    let leaf = prop_oneof![
        Just(JsValue::Undefined),
        Just(JsValue::Null),
        any::<bool>().prop_map(JsValue::Bool),
        any::<f64>().prop_filter("finite", |n| n.is_finite()).prop_map(JsValue::Number),
        surrogates::arbitrary(0..12).prop_filter("not the marker", |s| s != MARKER).prop_map(JsValue::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(JsValue::Array),
            proptest::collection::btree_map(surrogates::arbitrary(0..3), inner, 0..6)
                .prop_map(|members| js_object(members.into_iter().collect())),
        ]
    })
}

/// Text made mostly of JSON's own characters, so that the parser gets past the first byte.
const JSONISH: &str =
    r#"[\[\]{}",:0-9a-fA-F.+\- \ntrulsn\\u\x{FFFC}\x{D7FF}\x{10000}\x{FDD0}\x{E000}]{0,48}"#;

proptest! {
    #[test]
    fn parsing_never_panics(text in ".*", jsonish in JSONISH, bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = parse(&text, true);
        let _ = parse(&jsonish, true);
        let _ = parse(&jsonish, false);
        let _ = parse(&String::from_utf8_lossy(&bytes), false);
    }

    #[test]
    fn the_wire_form_parses_back_to_the_same_value(value in js_value_with_undefined()) {
        let mut wire = String::new();
        write_wire(&value, &mut wire);
        let parsed = parse(&wire, true).unwrap();
        prop_assert_eq!(&parsed, &value);
        let mut again = String::new();
        write_wire(&parsed, &mut again);
        prop_assert_eq!(again, wire);
    }

    #[test]
    fn printed_values_parse_back_to_what_prints_the_same(value in js_value()) {
        // Generated objects are not in JavaScript key order; one parse puts them in it.
        let print = |value: &JsValue| { let mut out = String::new(); write_stored(value, &mut out); out };
        let normalised = print(&parse(&print(&value), false).unwrap());
        prop_assert_eq!(print(&parse(&normalised, false).unwrap()), normalised);
    }
}
