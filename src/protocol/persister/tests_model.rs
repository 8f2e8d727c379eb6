//! Model-based property tests: a random initial PUT, then random changes (deletions of tables,
//! rows, cells and values included, over ids chosen to collide and to start one another),
//! checked step by step against a plain model, against the storage ops replayed on a "disk"
//! and reloaded, and against a follower store that only ever sees the broadcasts.

use std::collections::BTreeMap;

use super::*;
use crate::protocol::ids::{TabularId, ValueId};
use proptest::prelude::*;

const M: &str = "\u{FFFC}";

/// A cell as a change sends it (canonical JSON, marker possibly inside) and as a change stores it.
/// In a PUT the marker is a plain string, so a PUT stores the first form as it is.
fn cell() -> impl Strategy<Value = (String, String)> {
    let same = |text: String| (text.clone(), text);
    prop_oneof![
        any::<i32>().prop_map(move |n| same(n.to_string())),
        any::<f64>().prop_filter("finite", |n| n.is_finite()).prop_map(move |n| {
            let mut text = String::new();
            json::write_number(n, &mut text);
            same(text)
        }),
        json::surrogates::arbitrary(0..4).prop_filter("not the marker", |s| s != M).prop_map(move |s| {
            let mut text = String::new();
            json::write_string(&s, &mut text);
            same(text)
        }),
        Just(same("true".into())),
        Just(same("null".into())),
        Just((format!("[\"{M}\",1]"), "[null,1]".to_owned())),
        Just((format!("{{\"2\":[],\"k\":\"{M}\"}}"), "{\"2\":[]}".to_owned())),
    ]
}

/// Ids that collide often and start one another, plus arbitrary short ones (lone surrogates
/// included, held as `json::surrogates` does).
fn id() -> impl Strategy<Value = String> {
    let usual = ["", "a", "ab", "a\"", "a\\", "a,", "a\",\"b", "0", "10", "01", M, "__proto__"];
    let lone = vec![vec![0xD800], vec![0xD800, 0x61], vec![0xDC00], vec![0xFDD0], vec![0xFFFD]];
    prop_oneof![
        3 => proptest::sample::select(usual.to_vec()).prop_map(String::from),
        1 => proptest::sample::select(lone).prop_map(|units: Vec<u16>| json::surrogates::from_utf16(&units)),
        1 => json::surrogates::arbitrary(0..3),
    ]
}

type Cells = BTreeMap<String, Option<(String, String)>>;
type Rows = BTreeMap<String, Option<Cells>>;
type Tables = BTreeMap<String, Option<Rows>>;

fn id_map<T: std::fmt::Debug>(
    members: impl Strategy<Value = T>,
) -> impl Strategy<Value = BTreeMap<String, T>> {
    proptest::collection::btree_map(id(), members, 0..4)
}

fn changes() -> impl Strategy<Value = (Tables, Cells)> {
    let cells = || id_map(proptest::option::weighted(0.7, cell()));
    let rows = id_map(proptest::option::weighted(0.8, cells()));
    (id_map(proptest::option::weighted(0.8, rows)), cells())
}

/// JSON of an object whose members are `None` (written as the marker) or some JSON text.
fn object<T>(members: &BTreeMap<String, Option<T>>, write: impl Fn(&T, &mut String)) -> String {
    let mut out = String::from("{");
    for (i, (id, member)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_string(id, &mut out);
        out.push(':');
        match member {
            None => json::write_string(M, &mut out),
            Some(member) => write(member, &mut out),
        }
    }
    out.push('}');
    out
}

fn frame((tables, values): &(Tables, Cells)) -> String {
    let cells =
        |cells: &Cells, out: &mut String| out.push_str(&object(cells, |(wire, _), out| out.push_str(wire)));
    let rows = |rows: &Rows, out: &mut String| out.push_str(&object(rows, cells));
    format!("s[{},{},1]", object(tables, rows), object(values, |(wire, _), out| out.push_str(wire)))
}

/// The model: plain maps of stored JSON texts.
#[derive(Default)]
struct Model {
    tables: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    values: BTreeMap<String, String>,
}

impl Model {
    /// Applies changes; whether anything was accepted (so broadcast).
    fn apply(&mut self, (tables, values): &(Tables, Cells)) -> bool {
        let mut accepted = false;
        for (t, change) in tables {
            match change {
                None => {
                    self.tables.remove(t);
                    accepted = true;
                }
                Some(rows) => {
                    for (r, change) in rows {
                        let table = self.tables.entry(t.clone()).or_default();
                        match change {
                            None => {
                                table.remove(r);
                                accepted = true;
                            }
                            Some(cells) => {
                                for (c, change) in cells {
                                    accepted = true;
                                    let row = table.entry(r.clone()).or_default();
                                    match change {
                                        None => row.remove(c),
                                        Some((_, stored)) => row.insert(c.clone(), stored.clone()),
                                    };
                                }
                            }
                        }
                    }
                }
            }
        }
        for (v, change) in values {
            accepted = true;
            match change {
                None => self.values.remove(v),
                Some((_, stored)) => self.values.insert(v.clone(), stored.clone()),
            };
        }
        for rows in self.tables.values_mut() {
            rows.retain(|_, cells| !cells.is_empty());
        }
        self.tables.retain(|_, rows| !rows.is_empty());
        accepted
    }

    /// The GET body, written independently of `PersisterStore::render`.
    fn render(&self) -> String {
        let sorted = |ids: Vec<&String>| {
            let mut ids: Vec<TabularId> = ids.into_iter().map(|id| TabularId::from(id.as_str())).collect();
            ids.sort();
            ids
        };
        let mut out = String::from("[{");
        for (i, t) in sorted(self.tables.keys().collect()).iter().enumerate() {
            let rows = &self.tables[t.as_str()];
            out.push_str(if i > 0 { "," } else { "" });
            json::write_string(t.as_str(), &mut out);
            out.push_str(":{");
            for (j, r) in sorted(rows.keys().collect()).iter().enumerate() {
                let cells = &rows[r.as_str()];
                out.push_str(if j > 0 { "," } else { "" });
                json::write_string(r.as_str(), &mut out);
                out.push_str(":{");
                for (k, c) in sorted(cells.keys().collect()).iter().enumerate() {
                    out.push_str(if k > 0 { "," } else { "" });
                    json::write_string(c.as_str(), &mut out);
                    out.push(':');
                    out.push_str(&cells[c.as_str()]);
                }
                out.push('}');
            }
            out.push('}');
        }
        out.push_str("},{");
        let mut values: Vec<ValueId> = self.values.keys().map(|v| ValueId::from(v.as_str())).collect();
        values.sort();
        for (i, v) in values.iter().enumerate() {
            out.push_str(if i > 0 { "," } else { "" });
            json::write_string(v.as_str(), &mut out);
            out.push(':');
            out.push_str(&self.values[v.as_str()]);
        }
        out.push_str("}]");
        out
    }
}

/// What storage would hold after replaying the ops.
#[derive(Default)]
struct Disk {
    flag: bool,
    cells: BTreeMap<(String, String, String), CellText>,
    values: BTreeMap<String, CellText>,
}

impl Disk {
    fn replay(&mut self, ops: Vec<StoreOp>) -> Result<(), TestCaseError> {
        for op in ops {
            match op {
                StoreOp::SetStoreFlag => self.flag = true,
                StoreOp::SetCell { table, row, cell, text } => {
                    drop(self.cells.insert((table, row, cell), text))
                }
                StoreOp::DelCell { table, row, cell } => {
                    prop_assert!(
                        self.cells.remove(&(table, row, cell)).is_some(),
                        "a deletion of nothing stored"
                    );
                }
                StoreOp::SetValue { id, text } => drop(self.values.insert(id, text)),
                StoreOp::DelValue { id } => {
                    prop_assert!(self.values.remove(&id).is_some(), "a deletion of nothing stored")
                }
            }
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        let cells =
            self.cells.iter().map(|((t, r, c), text)| t.len() + r.len() + c.len() + text.as_str().len());
        cells.sum::<usize>()
            + self.values.iter().map(|(v, text)| v.len() + text.as_str().len()).sum::<usize>()
    }

    fn load(&self) -> PersisterStore {
        let flag = self.flag.then_some(StoredEntry::StoreFlag);
        let cells = self.cells.iter().map(|((table, row, cell), text)| StoredEntry::Cell {
            table: table.clone(),
            row: row.clone(),
            cell: cell.clone(),
            text: text.clone(),
        });
        let values =
            self.values.iter().map(|(id, text)| StoredEntry::Value { id: id.clone(), text: text.clone() });
        PersisterStore::from_entries(flag.into_iter().chain(cells).chain(values))
    }
}

/// Members as an initial PUT sends them (each cell in both forms, see [`cell`]).
type Sent = BTreeMap<String, (String, String)>;
/// Tables and values of an initial PUT.
type Initial = (BTreeMap<String, BTreeMap<String, Sent>>, Sent);

/// The PUT body of an initial content (wire forms: the marker is a plain string in a PUT).
fn put_body((tables, values): &Initial) -> String {
    let some = |map: &Sent| map.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect::<Cells>();
    let rows = |rows: &BTreeMap<String, Sent>| {
        rows.iter().map(|(r, cells)| (r.clone(), Some(some(cells)))).collect::<Rows>()
    };
    let tables: Tables = tables.iter().map(|(t, r)| (t.clone(), Some(rows(r)))).collect();
    let text = frame(&(tables, some(values)));
    format!("{}]", &text[1..text.len() - 3])
}

fn initial() -> impl Strategy<Value = Initial> {
    let cells = proptest::collection::btree_map(id(), cell(), 0..3);
    let tables =
        proptest::collection::btree_map(id(), proptest::collection::btree_map(id(), cells, 0..3), 0..3);
    (tables, proptest::collection::btree_map(id(), cell(), 0..3))
}

/// PUTs the body (then `[{},{}]` if it created no store, as a client's next PUT would); the ops.
fn put_until_stored(store: &mut PersisterStore, body: &str) -> Vec<StoreOp> {
    let mut all = Vec::new();
    for body in [body.as_bytes(), &b"[{},{}]"[..]] {
        if let PutOutcome::Saved { ops, created_store } = store.put(parse_content(body).unwrap()) {
            all.extend(ops);
            if created_store {
                break;
            }
        }
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn changes_agree_with_the_model_the_disk_and_the_broadcasts(initial in initial(), steps in proptest::collection::vec(changes(), 1..6)) {
        let body = put_body(&initial);
        let (mut store, mut follower, mut disk) = (PersisterStore::new(), PersisterStore::new(), Disk::default());
        disk.replay(put_until_stored(&mut store, &body))?;
        put_until_stored(&mut follower, &body);
        // A PUT stores the sent text as it is: the marker is a plain string there.
        let mut model = Model::default();
        for (t, rows) in initial.0 {
            for (r, cells) in rows {
                for (c, (wire, _)) in cells {
                    model.tables.entry(t.clone()).or_default().entry(r.clone()).or_default().insert(c, wire);
                }
            }
        }
        model.values = initial.1.into_iter().map(|(v, (wire, _))| (v, wire)).collect();
        prop_assert!(disk.flag && store.has_store());
        prop_assert_eq!(store.render().unwrap(), model.render(), "{}", body);
        prop_assert_eq!(disk.load().render(), store.render());
        prop_assert_eq!(disk.bytes(), store.stored_bytes());

        for step in steps {
            let sent = frame(&step);
            let changes = parse_frame(&sent, "").unwrap();
            let predicted = store.bytes_after(&changes);
            let accepted = model.apply(&step);
            let applied = store.apply_changes(changes);
            prop_assert_eq!(applied.is_some(), accepted, "{}", sent);
            prop_assert_eq!(store.render().unwrap(), model.render(), "{}", sent);
            prop_assert_eq!(store.stored_bytes(), predicted);
            if let Some(Applied { ops, payload }) = applied {
                disk.replay(ops)?;
                let relayed = parse_frame(&format!("s{payload}"), "").unwrap();
                prop_assert!(follower.apply_changes(relayed).is_some());
            }
            prop_assert_eq!(follower.render(), store.render(), "the broadcasts replay to the same store");
            prop_assert_eq!(disk.load().render(), store.render(), "the ops replay to the same store");
            prop_assert_eq!(disk.bytes(), store.stored_bytes());
        }
    }
}
