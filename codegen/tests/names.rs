//! Every name `names` produces is a Rust identifier, whatever the schema text: random and
//! adversarial wire names (keywords in any case, digits first, punctuation, non-ASCII,
//! empty), model ids, and collisions.

use proptest::prelude::*;
use runcomfy_codegen::names;

fn assert_ident(kind: &str, input: &str, name: &str) {
    assert!(
        names::is_ident(name),
        "{kind} of {input:?} is {name:?}, not an identifier"
    );
}

/// Names that are keywords (raw or not), std names, or empty in some form.
const ADVERSARIAL: &[&str] = &[
    "",
    " ",
    "_",
    "__",
    "self",
    "Self",
    "SELF",
    "super",
    "crate",
    "type",
    "r#type",
    "async",
    "await",
    "dyn",
    "gen",
    "try",
    "union",
    "static",
    "macro_rules",
    "3",
    "3d",
    "-1",
    "0.5",
    "16:9",
    "Option",
    "Duration",
    "Result",
    "Box",
    "Vec",
    "String",
    "new",
    "validate",
    "into",
    "fmt",
    "extra",
    "models",
    "__rt",
    "解像度",
    "プロンプト",
    "a\u{0}b",
    "\r",
    "\n\t",
    "😀",
    "ǅ",
    "İ",
    "ß",
    "Ⅻ",
    "r#",
    "#",
    "$ref",
    "a-b_c.d e",
    "input",
    "INFO",
];

/// Every name built from one wire text.
fn check_wire(wire: &str) {
    assert_ident("field", wire, &names::field(wire));
    assert_ident("setter", wire, &names::setter(&names::snake(wire)));
    assert_ident("type", wire, &names::type_ident(&names::camel(wire)));
    assert_ident("variant", wire, &names::variant(wire));
    assert_ident("spelled variant", wire, &names::spelled_variant(wire));
    assert_ident(
        "vendor macro",
        wire,
        &names::vendor_macro("for_each_model", wire),
    );
    let (short, full) = names::def_type(wire, false);
    for name in names::type_names(&[(short.clone(), full.clone()), (short, full)]) {
        assert_ident("def type", wire, &name);
        assert!(
            !names::RESERVED_TYPES.contains(&name.as_str()),
            "{wire:?} took the reserved {name}"
        );
    }
}

#[test]
fn adversarial_names_are_identifiers() {
    // The check itself tells identifiers from the rest.
    for not_ident in ["", "self", "type", "3d", "a-b", "r#self", "Self", "r#", "_"] {
        assert!(!names::is_ident(not_ident), "{not_ident:?}");
    }
    assert!(names::is_ident("r#type") && names::is_ident("self_value"));
    for wire in ADVERSARIAL {
        check_wire(wire);
    }
    for n in [i64::MIN, -1, 0, 5, i64::MAX] {
        assert_ident("int variant", &n.to_string(), &names::int_variant(n));
    }
    // Type names never shadow the std names users import beside them.
    let names = names::type_names(&[
        ("Duration".into(), "InputDuration".into()),
        ("Option".into(), "InputOption".into()),
        ("Self".into(), "InputSelf".into()),
    ]);
    assert_eq!(names, ["InputDuration", "InputOption", "SelfValue"]);
}

#[test]
fn module_paths_and_methods_of_colliding_ids_are_identifiers() {
    let ids: Vec<String> = [
        "a/self/type",
        "a/Self/type",
        "a/self-/type",
        "models/x",
        "__rt/x",
        "3d/4k",
        "a.b/c-d",
        "a-b/c.d",
        "happyhorse/happyhorse-1.0/image-to-video",
        "new/x",
    ]
    .map(String::from)
    .to_vec();
    let paths = names::module_paths(&ids);
    for (id, path) in ids.iter().zip(&paths) {
        for seg in path {
            assert_ident("module", id, seg);
        }
    }
    let distinct: std::collections::BTreeSet<&Vec<String>> = paths.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{paths:?}");
    let methods = names::trait_methods(&ids);
    for (id, m) in ids.iter().zip(&methods) {
        assert_ident("method", id, m);
    }
    let distinct: std::collections::BTreeSet<&String> = methods.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{methods:?}");
}

/// A model id segment as `load` accepts them.
fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,12}".prop_filter("not . or ..", |s| s != "." && s != "..")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_wire_text_gives_identifiers(wire in "\\PC{0,24}") {
        check_wire(&wire);
    }

    #[test]
    fn any_ascii_text_gives_identifiers(wire in "[ -~]{0,24}") {
        check_wire(&wire);
    }

    #[test]
    fn any_integer_variant_is_an_identifier(n in any::<i64>()) {
        assert_ident("int variant", &n.to_string(), &names::int_variant(n));
    }

    #[test]
    fn any_ids_give_distinct_identifier_paths(
        ids in proptest::collection::btree_set(proptest::collection::vec(segment(), 2..5), 1..12)
    ) {
        let ids: Vec<String> = ids.into_iter().map(|segs| segs.join("/")).collect();
        // Ids that are a prefix of another (`a/b` and `a/b/c`) are both models; paths differ.
        let paths = names::module_paths(&ids);
        for (id, path) in ids.iter().zip(&paths) {
            prop_assert_eq!(path.len(), id.split('/').count());
            for seg in path {
                assert_ident("module", id, seg);
            }
        }
        let distinct: std::collections::BTreeSet<&Vec<String>> = paths.iter().collect();
        prop_assert_eq!(distinct.len(), ids.len());
        let methods = names::trait_methods(&ids);
        for (id, m) in ids.iter().zip(&methods) {
            assert_ident("method", id, m);
        }
        let distinct: std::collections::BTreeSet<&String> = methods.iter().collect();
        prop_assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn deduped_fields_are_distinct_identifiers(wires in proptest::collection::vec("[ -~]{0,8}", 1..10)) {
        let candidates: Vec<(String, String)> =
            wires.iter().map(|w| (w.clone(), names::snake(w))).collect();
        let deduped = names::dedupe(&candidates, &[names::EXTRA_FIELD], names::snake, false);
        for (w, name) in wires.iter().zip(&deduped) {
            assert_ident("deduped field", w, &names::ident_text(name));
        }
        // Distinct wire names get distinct fields.
        let distinct_wires: std::collections::BTreeSet<&String> = wires.iter().collect();
        let distinct_names: std::collections::BTreeSet<&String> = deduped.iter().collect();
        prop_assert!(distinct_names.len() >= distinct_wires.len());
    }
}
