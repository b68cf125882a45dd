//! Stripped variants of our generated code, to attribute compile time: each removes one kind
//! of derive or impl from the formatted output (parsed back with syn), so that
//! `scripts/bench-compile` can build each variant and compare it with the full output.
//! The generator itself is not changed.

use anyhow::{anyhow, Result};
use syn::punctuated::Punctuated;
use syn::{Attribute, ImplItem, Item, Meta, Token};

/// One way to strip the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The generator's output as it is.
    Full,
    /// No `serde::Deserialize` derive (request types only need `Serialize`).
    NoDeserialize,
    /// `validate_into` bodies emptied (the `Validate` impls stay: `Model` needs them).
    NoValidate,
    /// No `Eq`, `Hash`, `PartialOrd`, `Ord` derives, and no `PartialEq` on structs.
    LeanDerives,
    /// No enum `as_str` impls, no `Display` impls.
    NoEnumImpls,
    /// No setters on `Input` (only `new`).
    NoSetters,
    /// No doc comments.
    NoDocs,
    /// Everything above at once: the floor of types + `Serialize` + `Validate` + `Model`.
    Minimal,
}

impl Variant {
    /// Every variant, with its command-line name.
    pub const ALL: &'static [(&'static str, Variant)] = &[
        ("full", Variant::Full),
        ("no-deserialize", Variant::NoDeserialize),
        ("no-validate", Variant::NoValidate),
        ("lean-derives", Variant::LeanDerives),
        ("no-enum-impls", Variant::NoEnumImpls),
        ("no-setters", Variant::NoSetters),
        ("no-docs", Variant::NoDocs),
        ("minimal", Variant::Minimal),
    ];

    /// The variant named `name`.
    pub fn from_name(name: &str) -> Option<Variant> {
        Variant::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    fn has(self, part: Variant) -> bool {
        self == part || (self == Variant::Minimal && part != Variant::Full)
    }
}

/// `code` (a formatted file from our generator) stripped as `variant` says, formatted again.
pub fn apply(code: &str, variant: Variant) -> Result<String> {
    if variant == Variant::Full {
        return Ok(code.to_owned());
    }
    let mut file = syn::parse_file(code).map_err(|e| anyhow!("generated code: {e}"))?;
    strip_items(&mut file.items, variant)?;
    Ok(prettyplease::unparse(&file))
}

fn strip_items(items: &mut Vec<Item>, v: Variant) -> Result<()> {
    let mut keep = Vec::with_capacity(items.len());
    for mut item in items.drain(..) {
        match &mut item {
            Item::Mod(m) => {
                strip_attrs(&mut m.attrs, v, false)?;
                if let Some((_, inner)) = &mut m.content {
                    strip_items(inner, v)?;
                }
            }
            Item::Struct(s) => {
                strip_attrs(&mut s.attrs, v, true)?;
                for f in s.fields.iter_mut() {
                    strip_attrs(&mut f.attrs, v, false)?;
                }
            }
            Item::Enum(e) => {
                strip_attrs(&mut e.attrs, v, false)?;
                for var in e.variants.iter_mut() {
                    strip_attrs(&mut var.attrs, v, false)?;
                }
            }
            Item::Impl(imp) => {
                let trait_name = imp
                    .trait_
                    .as_ref()
                    .and_then(|(p, _)| p.segments.last())
                    .map(|s| s.ident.to_string());
                let self_is_input = matches!(&*imp.self_ty, syn::Type::Path(p)
                    if p.path.is_ident("Input"));
                if v.has(Variant::NoEnumImpls) {
                    // `ALL` of integer enums stays: their `TryFrom<i64>` uses it.
                    let enum_inherent = trait_name.is_none()
                        && imp
                            .items
                            .iter()
                            .all(|i| matches!(i, ImplItem::Fn(f) if f.sig.ident == "as_str"));
                    if enum_inherent || trait_name.as_deref() == Some("Display") {
                        continue;
                    }
                }
                if v.has(Variant::NoSetters) && trait_name.is_none() && self_is_input {
                    imp.items
                        .retain(|i| matches!(i, ImplItem::Fn(f) if f.sig.ident == "new"));
                }
                strip_attrs(&mut imp.attrs, v, false)?;
                for i in imp.items.iter_mut() {
                    if let ImplItem::Fn(f) = i {
                        strip_attrs(&mut f.attrs, v, false)?;
                        if v.has(Variant::NoValidate) && f.sig.ident == "validate_into" {
                            f.block.stmts.clear();
                        }
                    }
                }
            }
            Item::Const(c) => strip_attrs(&mut c.attrs, v, false)?,
            Item::Type(t) => strip_attrs(&mut t.attrs, v, false)?,
            Item::Trait(t) => strip_attrs(&mut t.attrs, v, false)?,
            Item::Macro(m) => strip_attrs(&mut m.attrs, v, false)?,
            _ => {}
        }
        keep.push(item);
    }
    *items = keep;
    Ok(())
}

fn strip_attrs(attrs: &mut Vec<Attribute>, v: Variant, is_struct: bool) -> Result<()> {
    if v.has(Variant::NoDocs) {
        attrs.retain(|a| !a.path().is_ident("doc"));
    }
    let mut keep = Vec::with_capacity(attrs.len());
    for mut a in attrs.drain(..) {
        if a.path().is_ident("derive") {
            let paths = a.parse_args_with(Punctuated::<syn::Path, Token![,]>::parse_terminated)?;
            let kept: Punctuated<syn::Path, Token![,]> = paths
                .into_iter()
                .filter(|p| {
                    let name = p
                        .segments
                        .last()
                        .map(|s| s.ident.to_string())
                        .unwrap_or_default();
                    let drop = (v.has(Variant::NoDeserialize) && name == "Deserialize")
                        || (v.has(Variant::LeanDerives)
                            && (matches!(name.as_str(), "Eq" | "Hash" | "PartialOrd" | "Ord")
                                || (is_struct && name == "PartialEq")));
                    !drop
                })
                .collect();
            if kept.is_empty() {
                continue;
            }
            if let Meta::List(list) = &mut a.meta {
                list.tokens = quote::quote!(#kept);
            }
        }
        keep.push(a);
    }
    *attrs = keep;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = r#"
pub mod m {
    /// Doc.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
    #[derive(__rt::serde::Serialize, __rt::serde::Deserialize)]
    pub enum E { #[default] A }
    impl E { pub const fn as_str(&self) -> &'static str { "a" } }
    impl ::std::fmt::Display for E {
        fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result { f.write_str(self.as_str()) }
    }
    #[derive(Debug, Clone, PartialEq)]
    #[derive(__rt::serde::Serialize, __rt::serde::Deserialize)]
    pub struct Input { pub e: Option<E> }
    impl Input {
        pub fn new() -> Self { Input { e: None } }
        pub fn e(mut self, value: E) -> Self { self.e = Some(value); self }
    }
    impl __rt::Validate for Input {
        fn validate_into(&self, v: &mut __rt::Validator) { v.pop(); }
    }
}
"#;

    #[test]
    fn each_variant_strips_its_part() {
        let full = apply(CODE, Variant::Full).unwrap();
        assert_eq!(full, CODE);
        let count = |v: Variant, needle: &str| apply(CODE, v).unwrap().matches(needle).count();
        assert_eq!(count(Variant::NoDeserialize, "Deserialize"), 0);
        assert_eq!(count(Variant::NoDeserialize, "Serialize"), 2);
        assert_eq!(count(Variant::NoValidate, "v.pop()"), 0);
        assert_eq!(count(Variant::LeanDerives, "Hash"), 0);
        assert_eq!(count(Variant::LeanDerives, "PartialEq"), 1);
        assert_eq!(count(Variant::NoEnumImpls, "as_str"), 0);
        assert_eq!(count(Variant::NoSetters, "fn e("), 0);
        assert_eq!(count(Variant::NoSetters, "fn new("), 1);
        assert_eq!(count(Variant::NoDocs, "Doc."), 0);
        let min = apply(CODE, Variant::Minimal).unwrap();
        assert!(!min.contains("Deserialize") && !min.contains("as_str") && !min.contains("Doc."));
        assert!(min.contains("impl __rt::Validate for Input"));
        for (name, v) in Variant::ALL {
            assert_eq!(Variant::from_name(name), Some(*v));
        }
    }
}
