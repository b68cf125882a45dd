//! Stage 4, emit: IR in, tokens out. Cannot fail: every check ran in the stages before.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{
    Body, Bounds, Catalog, Checks, Field, IntVariant, JsonType, Limits, Literal as JsonLiteral,
    ModelModule, OutputDef, Pred, Role, RuleCheck, StrVariant, Struct, Ty, TypeDef, Variant,
};
use crate::names;
use crate::{Endpoints, Options};

fn ident(s: &str) -> syn::Ident {
    match s.strip_prefix("r#") {
        Some(raw) => syn::Ident::new_raw(raw, proc_macro2::Span::call_site()),
        None => format_ident!("{}", s),
    }
}

/// The runtime path, already checked by [`Options::check`] (so it always parses).
fn path(s: &str) -> TokenStream {
    s.parse().unwrap_or_default()
}

fn docs(lines: &[String]) -> TokenStream {
    let lines = lines.iter().map(|l| format!(" {l}"));
    quote!(#(#[doc = #lines])*)
}

/// The whole generated file.
pub fn emit(catalog: &Catalog, opts: &Options) -> TokenStream {
    let models: Vec<&ModelModule> = catalog.models.iter().collect();
    let mut out = emit_modules(&models, opts);
    out.extend(emit_tail(catalog, opts));
    out
}

/// The model modules of `models`, nested by id segment. Models sharing a first segment
/// must all be in the same call.
pub fn emit_modules(models: &[&ModelModule], opts: &Options) -> TokenStream {
    module_tree(models, opts)
}

/// What follows the modules: the model macro, `ALL`, `SCHEMAS` and the endpoint trait.
pub fn emit_tail(catalog: &Catalog, opts: &Options) -> TokenStream {
    let rt = path(&opts.runtime_path);
    let endpoints = endpoint_trait(catalog, opts, &rt);
    let infos = catalog.models.iter().map(|m| {
        let p = m.path.iter().map(|s| ident(s));
        let cfg = vendor_cfg(m, opts);
        quote!(#cfg self::#(#p::)*INFO,)
    });
    let texts = catalog.models.iter().map(|m| {
        let cfg = vendor_cfg(m, opts);
        let (id, input) = (&m.id, &m.input_text);
        let output = match &m.output_text {
            Some(t) => quote!(Some(#t)),
            None => quote!(None),
        };
        quote!(#cfg #rt::__codegen::SchemaText { id: #id, input: #input, output: #output },)
    });
    let texts_cfg = match &opts.schema_texts_feature {
        Some(f) => quote!(#[cfg(feature = #f)]),
        None => quote!(),
    };
    let model_macro = opts.model_macro.as_ref().map(|name| {
        // One macro per vendor, defined twice: with the models when the vendor's feature is
        // on, empty when it is off. `cfg` must be decided here, not in the calling crate.
        let mut vendors: Vec<(&str, Vec<&ModelModule>)> = Vec::new();
        for m in &catalog.models {
            match vendors.iter_mut().find(|(v, _)| *v == m.vendor) {
                Some((_, ms)) => ms.push(m),
                None => vendors.push((&m.vendor, vec![m])),
            }
        }
        let mut defs = TokenStream::new();
        let mut calls = TokenStream::new();
        for (vendor, models) in &vendors {
            let inner = ident(&names::vendor_macro(name, vendor));
            let each = models.iter().map(|m| {
                let id = &m.id;
                let p = m.path.iter().map(|s| ident(s));
                quote!($callback!(#id, $crate::models::#(#p::)*Model);)
            });
            let gated = vendor_cfg(models[0], opts);
            if gated.is_empty() {
                defs.extend(quote! {
                    #[doc(hidden)]
                    #[macro_export]
                    macro_rules! #inner { ($callback:ident) => { #(#each)* }; }
                });
            } else {
                let f = &models[0].vendor;
                defs.extend(quote! {
                    #[cfg(feature = #f)]
                    #[doc(hidden)]
                    #[macro_export]
                    macro_rules! #inner { ($callback:ident) => { #(#each)* }; }
                    #[cfg(not(feature = #f))]
                    #[doc(hidden)]
                    #[macro_export]
                    macro_rules! #inner { ($callback:ident) => {}; }
                });
            }
            calls.extend(quote!($crate::#inner!($callback);));
        }
        let name = ident(name);
        quote! {
            #defs
            /// Calls `callback!("model/id", path::to::Model)` once for every generated model
            /// (of the vendors whose features are enabled).
            #[macro_export]
            #[doc(hidden)]
            macro_rules! #name {
                ($callback:ident) => { #calls };
            }
        }
    });
    quote! {
        #model_macro
        /// Every generated model (only those whose vendor feature is enabled).
        pub const ALL: &[#rt::__codegen::ModelInfo] = &[#(#infos)*];
        /// The schema files every generated model was made from, as compact JSON text (the
        /// output schema unwrapped), in model id order.
        #texts_cfg
        pub const SCHEMAS: &[#rt::__codegen::SchemaText] = &[#(#texts)*];
        #endpoints
    }
}

fn vendor_cfg(m: &ModelModule, opts: &Options) -> TokenStream {
    let gated = opts.vendor_features
        && opts
            .feature_vendors
            .as_ref()
            .is_none_or(|only| only.contains(&m.vendor));
    if gated {
        let f = &m.vendor;
        quote!(#[cfg(feature = #f)])
    } else {
        quote!()
    }
}

/// Nests model modules by id segment: `happyhorse::happyhorse_1_0::image_to_video`.
fn module_tree(models: &[&ModelModule], opts: &Options) -> TokenStream {
    fn level(models: &[&ModelModule], depth: usize, opts: &Options) -> TokenStream {
        let mut out = TokenStream::new();
        let mut i = 0;
        while i < models.len() {
            let name = &models[i].path[depth];
            let mut j = i;
            while j < models.len() && models[j].path[depth] == *name {
                j += 1;
            }
            let group = &models[i..j];
            let id = ident(name);
            let cfg = if depth == 0 {
                vendor_cfg(group[0], opts)
            } else {
                quote!()
            };
            let leaf = group.iter().find(|m| m.path.len() == depth + 1);
            let children: Vec<&ModelModule> = group
                .iter()
                .copied()
                .filter(|m| m.path.len() > depth + 1)
                .collect();
            let inner_children = level(&children, depth + 1, opts);
            let body = match leaf {
                Some(m) => model_body(m, opts),
                None => quote!(),
            };
            let doc = match leaf {
                Some(m) => docs(&m.docs),
                None => {
                    let prefix: Vec<&str> = group[0].id.split('/').take(depth + 1).collect();
                    let line = format!(" Models under `{}/`.", prefix.join("/"));
                    quote!(#[doc = #line])
                }
            };
            out.extend(quote! {
                #doc
                #cfg
                pub mod #id {
                    #body
                    #inner_children
                }
            });
            i = j;
        }
        out
    }
    let mut models: Vec<&ModelModule> = models.to_vec();
    models.sort_by(|a, b| a.path.cmp(&b.path));
    level(&models, 0, opts)
}

fn model_body(m: &ModelModule, opts: &Options) -> TokenStream {
    let rt = path(&opts.runtime_path);
    let id = &m.id;
    let types = m.types.iter().map(|t| type_def(t, opts));
    let output = match &m.output {
        OutputDef::Media => quote! {
            /// The result's `output`: this model ships no output schema, so it has the
            /// documented shape (URLs under `image(s)`, `video(s)`, `audio(s)`, other keys kept).
            pub type Output = __rt::MediaOutput;
        },
        OutputDef::Struct => quote!(),
        OutputDef::Alias(ty) => {
            let ty = rust_ty(ty);
            quote! {
                /// The result's `output`.
                pub type Output = #ty;
            }
        }
    };
    let summary = &m.summary;
    let model_doc = format!(
        " Marker for `{id}`: implements [`Model`](__rt::Model) with [`Input`] and [`Output`]."
    );
    quote! {
        #[allow(unused_imports)]
        use #rt::__codegen as __rt;
        #[doc = #model_doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct Model;
        impl __rt::Model for Model {
            const ID: &'static str = #id;
            type Input = Input;
            type Output = Output;
        }
        /// The model's id and summary.
        pub const INFO: __rt::ModelInfo = __rt::ModelInfo {
            id: #id,
            summary: #summary,
        };
        /// The typed endpoint of this model on `client`: `submit`, `run` and the other typed
        /// calls (the same as `client.endpoint::<Model>()`).
        pub fn endpoint(client: &__rt::Client) -> __rt::Endpoint<Model> {
            __rt::Endpoint::new(client)
        }
        #output
        #(#types)*
    }
}

/// The serde derives of a type. Request types need only `Serialize` to be sent; their
/// `Deserialize` (for loading inputs from JSON) is by far the costliest derive to compile, so
/// it can sit behind a cargo feature ([`Options::input_deserialize_feature`]).
fn serde_derives(role: Role, opts: &Options) -> TokenStream {
    match (role, &opts.input_deserialize_feature) {
        (Role::Input, Some(f)) => quote! {
            #[derive(__rt::serde::Serialize)]
            #[cfg_attr(feature = #f, derive(__rt::serde::Deserialize))]
        },
        _ => quote!(#[derive(__rt::serde::Serialize, __rt::serde::Deserialize)]),
    }
}

fn serde_attrs(role: Role, opts: &Options) -> TokenStream {
    let derives = serde_derives(role, opts);
    let schemars = match &opts.schemars_feature {
        Some(f) => quote! {
            #[cfg_attr(feature = #f, derive(__rt::schemars::JsonSchema))]
            #[cfg_attr(feature = #f, schemars(crate = "__rt::schemars"))]
        },
        None => quote!(),
    };
    quote! {
        #derives
        #[serde(crate = "__rt::serde")]
        #schemars
    }
}

fn type_def(t: &TypeDef, opts: &Options) -> TokenStream {
    let name = ident(&t.name);
    let doc = docs(&t.docs);
    let serde = serde_attrs(t.role, opts);
    match &t.body {
        Body::Struct(st) => {
            let Struct {
                fields,
                extra,
                is_input,
                deny_unknown,
                ..
            } = st;
            let decls = fields.iter().map(|f| field_decl(f, opts));
            let extra_decl = extra.as_ref().map(|e| {
                let n = ident(&e.ident);
                let ty = rust_ty(&e.ty);
                let doc = if t.role == Role::Input {
                    " The other keys, sent as they are."
                } else {
                    " Keys the schema does not name, as sent."
                };
                quote! {
                    #[doc = #doc]
                    #[serde(flatten)]
                    pub #n: ::std::collections::BTreeMap<String, #ty>,
                }
            });
            let ctor = if *is_input {
                input_impl(&t.name, st)
            } else {
                quote!()
            };
            let validate = if t.validates {
                validate_impl(&t.name, st)
            } else {
                quote!()
            };
            let deny = if *deny_unknown {
                quote!(#[serde(deny_unknown_fields)])
            } else {
                quote!()
            };
            let non_exhaustive = if *is_input && opts.non_exhaustive_input {
                quote!(#[non_exhaustive])
            } else {
                quote!()
            };
            quote! {
                #doc
                #[derive(Debug, Clone, PartialEq)]
                #serde
                #deny
                #non_exhaustive
                pub struct #name {
                    #(#decls)*
                    #extra_decl
                }
                #ctor
                #validate
            }
        }
        Body::StrEnum { variants, default } => {
            let vs = variants
                .iter()
                .enumerate()
                .map(|(i, StrVariant { name, wire })| {
                    let v = ident(name);
                    let d = if *default == Some(i) {
                        quote!(#[default])
                    } else {
                        quote!()
                    };
                    let doc = format!(" `{wire:?}`");
                    quote!(#[doc = #doc] #[serde(rename = #wire)] #d #v,)
                });
            let derive_default = if default.is_some() {
                quote!(Default,)
            } else {
                quote!()
            };
            let arms = variants.iter().map(|StrVariant { name, wire }| {
                let v = ident(name);
                quote!(Self::#v => #wire,)
            });
            quote! {
                #doc
                #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, #derive_default)]
                #serde
                pub enum #name { #(#vs)* }
                impl #name {
                    /// The value as sent on the wire.
                    pub const fn as_str(&self) -> &'static str {
                        match self { #(#arms)* }
                    }
                }
                impl ::std::fmt::Display for #name {
                    fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(self.as_str())
                    }
                }
            }
        }
        Body::IntEnum { variants, default } => {
            int_enum(&t.name, &t.docs, variants, *default, t.role, opts)
        }
        Body::Union { variants, tag } => {
            let vs = variants.iter().map(
                |Variant {
                     name,
                     ty,
                     tag_value,
                     ..
                 }| {
                    let v = ident(name);
                    let ty = rust_ty(ty);
                    match tag_value {
                        Some(value) => {
                            let doc = format!(
                                " `{}` is `{}`.",
                                tag.as_deref().unwrap_or(""),
                                crate::doctext::code(&format!("{value:?}"))
                            );
                            quote!(#[doc = #doc] #[serde(rename = #value)] #v(#ty),)
                        }
                        None => {
                            let doc = format!(" The `{name}` form.");
                            quote!(#[doc = #doc] #v(#ty),)
                        }
                    }
                },
            );
            let arms = variants.iter().map(
                |Variant {
                     name, ty, checks, ..
                 }| {
                    let v = ident(name);
                    let body = value_checks(ty, checks, quote!(x));
                    if body.is_empty() {
                        quote!(Self::#v(_) => {})
                    } else {
                        quote!(Self::#v(x) => { #body })
                    }
                },
            );
            let validate = t.validates.then(|| {
                quote! {
                    impl __rt::Validate for #name {
                        #[allow(unused_variables)]
                        fn validate_into(&self, v: &mut __rt::Validator) {
                            match self { #(#arms)* }
                        }
                    }
                }
            });
            let tagging = match tag {
                Some(tag) => quote!(#[serde(tag = #tag)]),
                None => quote!(#[serde(untagged)]),
            };
            quote! {
                #doc
                #[derive(Debug, Clone, PartialEq)]
                #serde
                #tagging
                pub enum #name { #(#vs)* }
                #validate
            }
        }
    }
}

fn int_enum(
    name: &str,
    doc_lines: &[String],
    variants: &[IntVariant],
    default: Option<usize>,
    role: Role,
    opts: &Options,
) -> TokenStream {
    let name_id = ident(name);
    let derives = serde_derives(role, opts);
    let doc = docs(doc_lines);
    let vs = variants
        .iter()
        .enumerate()
        .map(|(i, IntVariant { name, value: n })| {
            let v = ident(name);
            let d = if default == Some(i) {
                quote!(#[default])
            } else {
                quote!()
            };
            let doc = format!(" `{n}`");
            let n = Literal::i64_unsuffixed(*n);
            quote!(#[doc = #doc] #d #v = #n,)
        });
    let derive_default = if default.is_some() {
        quote!(Default,)
    } else {
        quote!()
    };
    let all = variants.iter().map(|IntVariant { name, .. }| {
        let v = ident(name);
        quote!(Self::#v)
    });
    let schemars = match &opts.schemars_feature {
        Some(f) => quote! {
            #[cfg(feature = #f)]
            impl __rt::schemars::JsonSchema for #name_id {
                fn schema_name() -> ::std::borrow::Cow<'static, str> {
                    ::std::borrow::Cow::Borrowed(#name)
                }
                fn json_schema(_: &mut __rt::schemars::SchemaGenerator) -> __rt::schemars::Schema {
                    __rt::int_enum_schema(Self::ALL)
                }
            }
        },
        None => quote!(),
    };
    quote! {
        #doc
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, #derive_default)]
        #derives
        #[serde(crate = "__rt::serde", into = "i64", try_from = "i64")]
        #[repr(i64)]
        pub enum #name_id { #(#vs)* }
        impl #name_id {
            /// Every value, in schema order.
            pub const ALL: &'static [Self] = &[#(#all),*];
        }
        impl ::std::convert::From<#name_id> for i64 {
            fn from(v: #name_id) -> i64 {
                v as i64
            }
        }
        impl ::std::convert::TryFrom<i64> for #name_id {
            type Error = __rt::UnknownVariant;
            fn try_from(n: i64) -> Result<Self, Self::Error> {
                __rt::UnknownVariant::find_int(#name, n, Self::ALL)
            }
        }
        #schemars
    }
}

fn rust_ty(ty: &Ty) -> TokenStream {
    match ty {
        Ty::Bool => quote!(bool),
        Ty::Int(w) => {
            let w = format_ident!("{}", w.as_str());
            quote!(#w)
        }
        Ty::F64 => quote!(f64),
        Ty::String => quote!(String),
        Ty::Url => quote!(__rt::Url),
        Ty::File => quote!(__rt::FileInput),
        Ty::Value => quote!(__rt::serde_json::Value),
        Ty::Named { name, .. } => {
            let n = ident(name);
            quote!(#n)
        }
        Ty::Vec(t) => {
            let t = rust_ty(t);
            quote!(Vec<#t>)
        }
        Ty::Map(t) => {
            let t = rust_ty(t);
            quote!(::std::collections::BTreeMap<String, #t>)
        }
        Ty::Box(t) => {
            let t = rust_ty(t);
            quote!(Box<#t>)
        }
        Ty::Option(t) => {
            let t = rust_ty(t);
            quote!(Option<#t>)
        }
    }
}

fn field_decl(f: &Field, opts: &Options) -> TokenStream {
    let doc = docs(&f.docs);
    let id = ident(&f.ident);
    let ty = rust_ty(&f.decl_ty());
    let bare = f.bare_ident();
    let rename = if bare != f.wire {
        let w = &f.wire;
        quote!(#[serde(rename = #w)])
    } else {
        quote!()
    };
    let skip = if f.skip_if_none() {
        quote!(#[serde(default, skip_serializing_if = "Option::is_none")])
    } else if f.nullable {
        // Required but nullable: serde would read a missing `Option` field as `None`.
        quote!(#[serde(deserialize_with = "__rt::required_nullable")])
    } else {
        quote!()
    };
    let schemars = match &opts.schemars_feature {
        Some(feat) => schemars_field_attrs(f, feat),
        None => quote!(),
    };
    quote! {
        #doc
        #rename
        #skip
        #schemars
        pub #id: #ty,
    }
}

/// Constraints as schema keywords, so that the derived JSON Schema states what the source does.
fn schemars_field_attrs(f: &Field, feature: &str) -> TokenStream {
    let c = &f.checks;
    let mut kvs: Vec<TokenStream> = Vec::new();
    let mut bound = |b: &Bounds, int: bool| {
        let lit = |v: f64| -> TokenStream {
            if int {
                let l = Literal::i64_suffixed(v as i64);
                quote!(#l)
            } else {
                let l = Literal::f64_unsuffixed(v);
                quote!(#l)
            }
        };
        for (k, v) in [
            ("minimum", b.min),
            ("maximum", b.max),
            ("exclusiveMinimum", b.exclusive_min),
            ("exclusiveMaximum", b.exclusive_max),
            ("multipleOf", b.multiple_of),
        ] {
            if let Some(v) = v {
                let v = lit(v);
                kvs.push(quote!(#k = #v));
            }
        }
    };
    if let Some(b) = &c.int {
        bound(b, true);
    }
    if let Some(b) = &c.num {
        bound(b, false);
    }
    if let Some(v) = c.len.min {
        kvs.push(quote!("minLength" = #v));
    }
    if let Some(v) = c.len.max {
        kvs.push(quote!("maxLength" = #v));
    }
    if let Some(p) = &c.pattern {
        kvs.push(quote!("pattern" = #p));
    }
    for (key, v) in [
        ("minItems", c.count.min),
        ("maxItems", c.count.max),
        ("minProperties", c.props.min),
        ("maxProperties", c.props.max),
    ] {
        if let Some(v) = v {
            kvs.push(quote!(#key = #v));
        }
    }
    if c.unique {
        kvs.push(quote!("uniqueItems" = true));
    }
    if kvs.is_empty() {
        return quote!();
    }
    quote!(#[cfg_attr(feature = #feature, schemars(extend(#(#kvs),*)))])
}

fn input_impl(name: &str, st: &Struct) -> TokenStream {
    let fields = &st.fields;
    let name = ident(name);
    let params = fields
        .iter()
        .filter(|f| f.required && f.fixed.is_none())
        .map(|f| {
            let id = ident(&f.ident);
            let ty = param_ty(&f.decl_ty());
            quote!(#id: #ty)
        });
    let inits = fields.iter().map(|f| {
        let id = ident(&f.ident);
        if let Some(v) = &f.fixed {
            let ty = rust_ty(&f.ty);
            let v = ident(v);
            if matches!(f.decl_ty(), Ty::Option(_)) {
                quote!(#id: Some(#ty::#v))
            } else {
                quote!(#id: #ty::#v)
            }
        } else if f.required {
            if is_into_string(&f.decl_ty()) {
                quote!(#id: #id.into())
            } else {
                quote!(#id)
            }
        } else {
            quote!(#id: None)
        }
    });
    // The other keys a schema types (`additionalProperties`, `patternProperties`) start
    // empty: they are set on the field, never required.
    let extra_init = st.extra.as_ref().map(|e| {
        let id = ident(&e.ident);
        quote!(#id: ::std::collections::BTreeMap::new())
    });
    let inits = inits.chain(extra_init);
    let ctor_doc: Vec<String> = {
        let mut d = vec!["Builds the request from its required fields.".to_owned()];
        let req: Vec<String> = fields
            .iter()
            .filter(|f| f.required && f.fixed.is_none())
            .map(|f| format!("`{}`", f.wire))
            .collect();
        if !req.is_empty() {
            d.push(String::new());
            d.push(format!("Required: {}.", req.join(", ")));
        }
        d
    };
    let ctor_doc = docs(&ctor_doc);
    // `Input` has no `Default` on purpose: even without required fields, a request is built
    // by naming the model's constructor, never by accident.
    let nparams = fields
        .iter()
        .filter(|f| f.required && f.fixed.is_none())
        .count();
    let allow = if nparams == 0 {
        quote!(#[allow(clippy::new_without_default)])
    } else if nparams > 7 {
        quote!(#[allow(clippy::too_many_arguments)])
    } else {
        quote!()
    };
    let setters = fields.iter().filter(|f| !f.required).map(|f| {
        let id = ident(&f.ident);
        let setter = ident(&f.setter);
        let ty = param_ty(&f.ty);
        let value = if is_into_string(&f.ty) {
            quote!(value.into())
        } else {
            quote!(value)
        };
        let doc = format!(
            " Sets [`{}`](Self#structfield.{}).",
            crate::doctext::code(&f.wire),
            f.bare_ident()
        );
        quote! {
            #[doc = #doc]
            pub fn #setter(mut self, value: #ty) -> Self {
                self.#id = Some(#value);
                self
            }
        }
    });
    quote! {
        impl #name {
            #ctor_doc
            #allow
            pub fn new(#(#params),*) -> Self {
                #name { #(#inits),* }
            }
            #(#setters)*
        }
    }
}

/// Parameters of these types take `impl Into<…>` (`&str` for a `String`; a URL, a path or
/// bytes for a `FileInput`).
fn is_into_string(ty: &Ty) -> bool {
    matches!(ty, Ty::String | Ty::File)
}

fn param_ty(ty: &Ty) -> TokenStream {
    if matches!(ty, Ty::File) {
        quote!(impl Into<__rt::FileInput>)
    } else if is_into_string(ty) {
        quote!(impl Into<String>)
    } else {
        rust_ty(ty)
    }
}

fn validate_impl(name: &str, st: &Struct) -> TokenStream {
    let fields = &st.fields;
    let name = ident(name);
    let checks = fields.iter().filter_map(|f| {
        if f.checks.is_empty() {
            return None;
        }
        let id = ident(&f.ident);
        let wire = &f.wire;
        let body = value_checks(&f.ty, &f.checks, quote!(x));
        Some(match f.decl_ty() {
            Ty::Option(_) => quote! {
                if let Some(x) = &self.#id {
                    v.push_key(#wire);
                    #body
                    v.pop();
                }
            },
            _ => quote! {
                {
                    let x = &self.#id;
                    v.push_key(#wire);
                    #body
                    v.pop();
                }
            },
        })
    });
    let extra = st.extra.as_ref().map(|e| {
        let id = ident(&e.ident);
        let mut c = Checks {
            each: (!e.checks.is_empty()).then(|| Box::new(e.checks.clone())),
            key_pattern: st.key_pattern.clone(),
            ..Checks::default()
        };
        c.nested = false;
        let body = value_checks(&Ty::Map(Box::new(e.ty.clone())), &c, quote!(x));
        quote!({ let x = &self.#id; #body })
    });
    let rules = rule_checks(&st.rules, quote!(self));
    quote! {
        impl __rt::Validate for #name {
            #[allow(unused_variables)]
            fn validate_into(&self, v: &mut __rt::Validator) {
                #(#checks)*
                #extra
                #rules
            }
        }
    }
}

/// The validation-only rules of a value `x` (a reference to something `Serialize`), on its
/// JSON form.
fn rule_checks(rules: &[RuleCheck], x: TokenStream) -> TokenStream {
    if rules.is_empty() {
        return quote!();
    }
    let each = rules.iter().map(|r| match r {
        RuleCheck::Not(p) => {
            let p = pred(p, quote!(j));
            quote!(if #p { v.fail(__rt::Rule::Not, j.clone()); })
        }
        RuleCheck::Condition {
            test,
            then,
            otherwise,
        } => {
            let j = quote!(j);
            let fail_then = quote!(v.fail(__rt::Rule::Then, j.clone()););
            let fail_else = quote!(v.fail(__rt::Rule::Else, j.clone()););
            match (*then != Pred::True, *otherwise != Pred::True) {
                (true, true) => {
                    let t = pred(test, j.clone());
                    let th = neg_expr(then, &j).0;
                    let el = neg_expr(otherwise, &j).0;
                    quote!(if #t { if #th { #fail_then } } else if #el { #fail_else })
                }
                (true, false) => {
                    let t = operand(test, &j);
                    let th = neg_operand(then, &j);
                    quote!(if #t && #th { #fail_then })
                }
                (false, true) => {
                    let t = neg_operand(test, &j);
                    let el = neg_operand(otherwise, &j);
                    quote!(if #t && #el { #fail_else })
                }
                (false, false) => quote!(),
            }
        }
    });
    quote! {
        if let Ok(j) = __rt::serde_json::to_value(#x) {
            let j = &j;
            #(#each)*
        }
    }
}

/// A predicate on `j: &serde_json::Value`, as a `bool` expression without outer parentheses.
fn pred(p: &Pred, j: TokenStream) -> TokenStream {
    pred_expr(p, &j).0
}

/// The expression in parentheses when it is a compound (`a && b`, `a || b`), for use as an
/// operand.
fn operand(p: &Pred, j: &TokenStream) -> TokenStream {
    match pred_expr(p, j) {
        (e, true) => quote!((#e)),
        (e, false) => e,
    }
}

/// `terms` joined by `op`: `(expression, is it a compound)`.
fn join(terms: Vec<TokenStream>, op: TokenStream, empty: TokenStream) -> (TokenStream, bool) {
    match terms.len() {
        0 => (empty, false),
        1 => (terms.into_iter().next().unwrap_or_default(), false),
        _ => {
            let mut it = terms.into_iter();
            let first = it.next().unwrap_or_default();
            (quote!(#first #(#op #it)*), true)
        }
    }
}

/// Whether a predicate on limits holds for every value (no limit), so that its closure
/// would not use its argument.
fn no_limits(l: &Limits) -> bool {
    l.min.is_none() && l.max.is_none()
}

fn limits(l: &Limits, n: TokenStream) -> TokenStream {
    let mut terms = Vec::new();
    if let Some(m) = l.min {
        terms.push(quote!(#n >= #m));
    }
    if let Some(m) = l.max {
        terms.push(quote!(#n <= #m));
    }
    join(terms, quote!(&&), quote!(true)).0
}

fn pred_expr(p: &Pred, j: &TokenStream) -> (TokenStream, bool) {
    let simple = |e: TokenStream| (e, false);
    match p {
        Pred::True => simple(quote!(true)),
        Pred::False => simple(quote!(false)),
        Pred::All(ps) => join(
            ps.iter().map(|p| operand(p, j)).collect(),
            quote!(&&),
            quote!(true),
        ),
        Pred::Any(ps) => join(
            ps.iter().map(|p| operand(p, j)).collect(),
            quote!(||),
            quote!(false),
        ),
        Pred::Not(p) => neg_expr(p, j),
        Pred::Type(t) => simple(match t {
            JsonType::Null => quote!(#j.is_null()),
            JsonType::Bool => quote!(#j.is_boolean()),
            JsonType::Integer => {
                quote!(__rt::serde_json::Value::as_f64(#j).is_some_and(|f| f.fract() == 0.0))
            }
            JsonType::Number => quote!(#j.is_number()),
            JsonType::String => quote!(#j.is_string()),
            JsonType::Array => quote!(#j.is_array()),
            JsonType::Object => quote!(#j.is_object()),
        }),
        Pred::OneOf(lits) => join(one_of(lits, j, false), quote!(||), quote!(false)),
        Pred::Bounds(b) => {
            let fields = bound_fields(b, Literal::f64_unsuffixed);
            simple(
                quote!(#j.as_f64().is_none_or(|n| __rt::NumBounds { #(#fields,)* ..__rt::NumBounds::NONE }.admits(n))),
            )
        }
        Pred::Len(l) | Pred::Items(l) | Pred::Props(l) if no_limits(l) => simple(quote!(true)),
        Pred::Len(l) => {
            let test = limits(l, quote!(s.chars().count() as u64));
            simple(quote!(#j.as_str().is_none_or(|s| #test)))
        }
        Pred::Pattern(p) => {
            let test = matches_pattern(p, quote!(s), false);
            simple(quote!(#j.as_str().is_none_or(|s| #test)))
        }
        Pred::Items(l) => {
            let test = limits(l, quote!(a.len() as u64));
            simple(quote!(#j.as_array().is_none_or(|a| #test)))
        }
        Pred::Props(l) => {
            let test = limits(l, quote!(o.len() as u64));
            simple(quote!(#j.as_object().is_none_or(|o| #test)))
        }
        Pred::Has(k) => simple(quote!(#j.as_object().is_none_or(|o| o.contains_key(#k)))),
        Pred::Prop(k, p) => {
            let p = pred(p, quote!(j));
            simple(quote!(#j.as_object().and_then(|o| o.get(#k)).is_none_or(|j| #p)))
        }
        Pred::Each(p) => {
            let p = pred(p, quote!(j));
            simple(quote!(#j.as_array().is_none_or(|a| a.iter().all(|j| #p))))
        }
        Pred::Unique => simple(quote!(#j
            .as_array()
            .is_none_or(|a| a.iter().enumerate().all(|(i, x)| !a[..i].contains(x))))),
        Pred::Others {
            known,
            pattern,
            each,
        } => simple(others(known, pattern.as_deref(), each, j, false)),
    }
}

/// Equal to one of `lits` (`negated`: to none of them), one term per JSON type, each without
/// a `!` before a comparison.
fn one_of(lits: &[JsonLiteral], j: &TokenStream, negated: bool) -> Vec<TokenStream> {
    let strs: Vec<&String> = lits
        .iter()
        .filter_map(|l| match l {
            JsonLiteral::Str(s) => Some(s),
            _ => None,
        })
        .collect();
    let bools: Vec<bool> = lits
        .iter()
        .filter_map(|l| match l {
            JsonLiteral::Bool(b) => Some(*b),
            _ => None,
        })
        .collect();
    let ints: Vec<Literal> = lits
        .iter()
        .filter_map(|l| match l {
            JsonLiteral::Int(n) => Some(Literal::f64_unsuffixed(*n as f64)),
            _ => None,
        })
        .collect();
    let not = if negated { quote!(!) } else { quote!() };
    let mut terms = Vec::new();
    if lits.iter().any(|l| matches!(l, JsonLiteral::Null)) {
        terms.push(quote!(#not #j.is_null()));
    }
    if !bools.is_empty() {
        terms.push(quote!(#not matches!(#j.as_bool(), Some(#(#bools)|*))));
    }
    if !strs.is_empty() {
        terms.push(quote!(#not matches!(#j.as_str(), Some(#(#strs)|*))));
    }
    if !ints.is_empty() {
        terms.push(if negated {
            quote!(#j.as_f64().is_none_or(|n| #(n != #ints)&&*))
        } else {
            quote!(#j.as_f64().is_some_and(|n| #(n == #ints)||*))
        });
    }
    terms
}

/// Whether the string `s` matches the pattern `p` (`negated`: does not), through a regex
/// compiled once; a pattern that does not compile (normalize checked it does) matches.
fn matches_pattern(p: &str, s: TokenStream, negated: bool) -> TokenStream {
    let test = if negated {
        quote!(RE.as_ref().is_some_and(|re| !re.is_match(#s)))
    } else {
        quote!(RE.as_ref().is_none_or(|re| re.is_match(#s)))
    };
    quote!({
        static RE: __rt::LazyLock<Option<__rt::Regex>> = __rt::LazyLock::new(|| __rt::Regex::new(#p).ok());
        #test
    })
}

/// An object each of whose keys outside `known` matches `pattern` and holds a value matching
/// `each` (`negated`: some such key does not). Closure arguments a test does not read are `_`.
fn others(
    known: &[String],
    pattern: Option<&str>,
    each: &Pred,
    j: &TokenStream,
    negated: bool,
) -> TokenStream {
    let mut terms = Vec::new();
    if let Some(p) = pattern {
        terms.push(matches_pattern(p, quote!(k), negated));
    }
    let uses_value = !matches!(each, Pred::True | Pred::False);
    if *each != Pred::True {
        terms.push(if negated {
            neg_operand(each, &quote!(j))
        } else {
            operand(each, &quote!(j))
        });
    }
    let uses_key = pattern.is_some() || !known.is_empty();
    let k = if uses_key { quote!(k) } else { quote!(_) };
    let v = if uses_value { quote!(j) } else { quote!(_) };
    if negated {
        let test = join(terms, quote!(||), quote!(false)).0;
        let test = if known.is_empty() {
            test
        } else {
            quote!(!matches!(k.as_str(), #(#known)|*) && (#test))
        };
        quote!(#j.as_object().is_some_and(|o| o.iter().any(|(#k, #v)| #test)))
    } else {
        let test = join(terms, quote!(&&), quote!(true)).0;
        let test = if known.is_empty() {
            test
        } else {
            quote!(matches!(k.as_str(), #(#known)|*) || (#test))
        };
        quote!(#j.as_object().is_none_or(|o| o.iter().all(|(#k, #v)| #test)))
    }
}

/// `p` negated as an operand: in parentheses when it is a compound.
fn neg_operand(p: &Pred, j: &TokenStream) -> TokenStream {
    match neg_expr(p, j) {
        (e, true) => quote!((#e)),
        (e, false) => e,
    }
}

/// A negated predicate, the negation pushed inward (De Morgan's laws, `is_none_or` turned
/// into `is_some_and` of the negated test): no `!` lands on a comparison or on an
/// `is_none_or`/`is_some_and` call, which clippy's `nonminimal_bool` refuses.
fn neg_expr(p: &Pred, j: &TokenStream) -> (TokenStream, bool) {
    let simple = |e: TokenStream| (e, false);
    let neg_limits = |l: &Limits, n: TokenStream| {
        let mut terms = Vec::new();
        // `(x as u64) < m`: without parentheses `u64 <` would open generic arguments.
        if let Some(m) = l.min {
            terms.push(quote!((#n) < #m));
        }
        if let Some(m) = l.max {
            terms.push(quote!((#n) > #m));
        }
        join(terms, quote!(||), quote!(false)).0
    };
    match p {
        Pred::True => simple(quote!(false)),
        Pred::False => simple(quote!(true)),
        Pred::All(ps) => join(
            ps.iter().map(|p| neg_operand(p, j)).collect(),
            quote!(||),
            quote!(false),
        ),
        Pred::Any(ps) => join(
            ps.iter().map(|p| neg_operand(p, j)).collect(),
            quote!(&&),
            quote!(true),
        ),
        Pred::Not(p) => pred_expr(p, j),
        Pred::Type(JsonType::Integer) => {
            simple(quote!(__rt::serde_json::Value::as_f64(#j).is_none_or(|f| f.fract() != 0.0)))
        }
        Pred::Type(_) => {
            let e = pred_expr(p, j).0;
            simple(quote!(!#e))
        }
        Pred::OneOf(lits) => join(one_of(lits, j, true), quote!(&&), quote!(true)),
        Pred::Bounds(b) => {
            let fields = bound_fields(b, Literal::f64_unsuffixed);
            simple(
                quote!(#j.as_f64().is_some_and(|n| !__rt::NumBounds { #(#fields,)* ..__rt::NumBounds::NONE }.admits(n))),
            )
        }
        Pred::Len(l) | Pred::Items(l) | Pred::Props(l) if no_limits(l) => simple(quote!(false)),
        Pred::Len(l) => {
            let test = neg_limits(l, quote!(s.chars().count() as u64));
            simple(quote!(#j.as_str().is_some_and(|s| #test)))
        }
        Pred::Pattern(p) => {
            let test = matches_pattern(p, quote!(s), true);
            simple(quote!(#j.as_str().is_some_and(|s| #test)))
        }
        Pred::Items(l) => {
            let test = neg_limits(l, quote!(a.len() as u64));
            simple(quote!(#j.as_array().is_some_and(|a| #test)))
        }
        Pred::Props(l) => {
            let test = neg_limits(l, quote!(o.len() as u64));
            simple(quote!(#j.as_object().is_some_and(|o| #test)))
        }
        Pred::Has(k) => simple(quote!(#j.as_object().is_some_and(|o| !o.contains_key(#k)))),
        Pred::Prop(k, p) => {
            let p = neg_expr(p, &quote!(j)).0;
            simple(quote!(#j.as_object().and_then(|o| o.get(#k)).is_some_and(|j| #p)))
        }
        Pred::Each(p) => {
            let p = neg_expr(p, &quote!(j)).0;
            simple(quote!(#j.as_array().is_some_and(|a| a.iter().any(|j| #p))))
        }
        Pred::Unique => simple(quote!(#j
            .as_array()
            .is_some_and(|a| a.iter().enumerate().any(|(i, x)| a[..i].contains(x))))),
        Pred::Others {
            known,
            pattern,
            each,
        } => simple(others(known, pattern.as_deref(), each, j, true)),
    }
}

fn opt<T: quote::ToTokens>(v: Option<T>) -> TokenStream {
    match v {
        Some(v) => quote!(Some(#v)),
        None => quote!(None),
    }
}

fn bound_fields(b: &Bounds, lit: impl Fn(f64) -> Literal) -> Vec<TokenStream> {
    [
        ("min", b.min),
        ("max", b.max),
        ("exclusive_min", b.exclusive_min),
        ("exclusive_max", b.exclusive_max),
        ("multiple_of", b.multiple_of),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        let k = format_ident!("{}", k);
        v.map(|v| {
            let l = lit(v);
            quote!(#k: Some(#l))
        })
    })
    .collect()
}

/// Checks of one value `x` (a reference) at the validator's current path.
fn value_checks(ty: &Ty, c: &Checks, x: TokenStream) -> TokenStream {
    match ty {
        Ty::Box(inner) => {
            let body = value_checks(inner, c, quote!(x));
            if body.is_empty() {
                return body;
            }
            return quote!({ let x = &**#x; #body });
        }
        Ty::Option(inner) => {
            let body = value_checks(inner, c, quote!(x));
            if body.is_empty() {
                return body;
            }
            return quote!(if let Some(x) = #x { #body });
        }
        Ty::Value => {
            let mut out = any_value_checks(c, &x);
            out.extend(rule_checks(&c.rules, x));
            return out;
        }
        _ => {}
    }
    let mut out = TokenStream::new();
    if let Some(b) = &c.int {
        let fields = bound_fields(b, |v| Literal::i128_unsuffixed(v as i128));
        out.extend(quote! {
            v.int(i128::from(*#x), __rt::IntBounds { #(#fields,)* ..__rt::IntBounds::NONE });
        });
    }
    if let Some(b) = &c.num {
        let fields = bound_fields(b, Literal::f64_unsuffixed);
        out.extend(quote! {
            v.num(*#x, __rt::NumBounds { #(#fields,)* ..__rt::NumBounds::NONE });
        });
    }
    if !c.len.is_empty() {
        let (min, max) = (opt(c.len.min), opt(c.len.max));
        out.extend(quote!(v.len(#x, #min, #max);));
    }
    if let Some(p) = &c.pattern {
        out.extend(regex_check(p, quote!(v.pattern(#x, re);)));
    }
    if let (Some(f), Ty::File) = (&c.file, ty) {
        let kind = format_ident!("{}", f.kind);
        let max = match f.max_mb {
            Some(m) => {
                let m = Literal::f64_unsuffixed(m);
                quote!(Some(#m))
            }
            None => quote!(None),
        };
        let inclusive = f.inclusive;
        out.extend(quote! {
            v.file(#x, __rt::FileRule { kind: __rt::FileKind::#kind, max_mb: #max, inclusive: #inclusive });
        });
    }
    match ty {
        Ty::Vec(item) => {
            if !c.count.is_empty() {
                let (min, max) = (opt(c.count.min), opt(c.count.max));
                out.extend(quote!(v.items(#x.len(), #min, #max);));
            }
            if c.unique {
                out.extend(quote!(v.unique(#x);));
            }
            if let Some(each) = &c.each {
                let body = value_checks(item, each, quote!(x));
                if !body.is_empty() {
                    out.extend(quote! {
                        for (i, x) in #x.iter().enumerate() {
                            v.push_index(i);
                            #body
                            v.pop();
                        }
                    });
                }
            }
        }
        Ty::Map(value) => {
            if !c.props.is_empty() {
                let (min, max) = (opt(c.props.min), opt(c.props.max));
                out.extend(quote!(v.entries(#x.len(), #min, #max);));
            }
            if let Some(p) = &c.key_pattern {
                out.extend(regex_check(
                    p,
                    quote!(for k in #x.keys() { v.key_pattern(k, re); }),
                ));
            }
            if let Some(each) = &c.each {
                let body = value_checks(value, each, quote!(x));
                if !body.is_empty() {
                    out.extend(quote! {
                        for (k, x) in #x.iter() {
                            v.push_key(k);
                            #body
                            v.pop();
                        }
                    });
                }
            }
        }
        Ty::Named {
            validates: true, ..
        } => {
            out.extend(quote!(__rt::Validate::validate_into(#x, v);));
        }
        _ => {}
    }
    out.extend(rule_checks(&c.rules, x));
    out
}

/// `body` with `re` bound to the compiled `pattern` (compiled once, on first use).
fn regex_check(pattern: &str, body: TokenStream) -> TokenStream {
    quote! {
        {
            static RE: __rt::LazyLock<Option<__rt::Regex>> = __rt::LazyLock::new(|| __rt::Regex::new(#pattern).ok());
            if let Some(re) = RE.as_ref() {
                #body
            }
        }
    }
}

/// Constraints on any JSON value `x` (`&serde_json::Value`): each checks values of its own
/// JSON type only, as JSON Schema says (`maximum` numbers, `maxLength` strings, ...).
fn any_value_checks(c: &Checks, x: &TokenStream) -> TokenStream {
    let mut out = TokenStream::new();
    if let Some(b) = c.num.as_ref().or(c.int.as_ref()) {
        let fields = bound_fields(b, Literal::f64_unsuffixed);
        out.extend(quote! {
            if let Some(n) = #x.as_f64() {
                v.num(n, __rt::NumBounds { #(#fields,)* ..__rt::NumBounds::NONE });
            }
        });
    }
    let mut string = TokenStream::new();
    if !c.len.is_empty() {
        let (min, max) = (opt(c.len.min), opt(c.len.max));
        string.extend(quote!(v.len(s, #min, #max);));
    }
    if let Some(p) = &c.pattern {
        string.extend(regex_check(p, quote!(v.pattern(s, re);)));
    }
    if !string.is_empty() {
        out.extend(quote!(if let Some(s) = #x.as_str() { #string }));
    }
    let mut array = TokenStream::new();
    if !c.count.is_empty() {
        let (min, max) = (opt(c.count.min), opt(c.count.max));
        array.extend(quote!(v.items(a.len(), #min, #max);));
    }
    if c.unique {
        array.extend(quote!(v.unique(a);));
    }
    if !array.is_empty() {
        out.extend(quote!(if let Some(a) = #x.as_array() { #array }));
    }
    if !c.props.is_empty() {
        let (min, max) = (opt(c.props.min), opt(c.props.max));
        out.extend(quote!(if let Some(o) = #x.as_object() { v.entries(o.len(), #min, #max); }));
    }
    out
}

/// The endpoint extension trait, when the options ask for one: a method per model on the
/// runtime's client, for crates that generate their own models.
fn endpoint_trait(catalog: &Catalog, opts: &Options, rt: &TokenStream) -> TokenStream {
    let Endpoints::Trait(name) = &opts.endpoints else {
        return quote!();
    };
    let methods: Vec<(TokenStream, TokenStream, TokenStream)> = catalog
        .models
        .iter()
        .map(|m| {
            let method = ident(&m.method);
            let p = m.path.iter().map(|s| ident(s));
            let module = quote!(self::#(#p)::*);
            let cfg = vendor_cfg(m, opts);
            let doc = format!(
                " The `{}` endpoint: `submit`, `run` and the other typed calls.",
                m.id
            );
            let attrs = quote!(#[doc = #doc] #cfg);
            let sig = quote!(fn #method(&self) -> #rt::__codegen::Endpoint<#module::Model>);
            let body = quote!({ #module::endpoint(self) });
            (attrs, sig, body)
        })
        .collect();
    let name = ident(name);
    let decls = methods.iter().map(|(attrs, sig, _)| quote!(#attrs #sig;));
    let impls = methods
        .iter()
        .map(|(attrs, sig, body)| quote!(#attrs #sig #body));
    quote! {
        /// Typed endpoints of the models generated in this crate; import it to call them on a client.
        pub trait #name {
            #(#decls)*
        }
        impl #name for #rt::__codegen::Client {
            #(#impls)*
        }
    }
}
