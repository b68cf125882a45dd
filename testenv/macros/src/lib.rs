//! `#[needs(service, ...)]`: the attribute behind `runcomfy-testenv` (see its docs).
//!
//! It decides when the test is compiled: a test whose service is absent gets
//! `#[ignore = "<why>"]`, so `cargo test` reports it as ignored with the reason, unless the
//! run requires the service (`RUNCOMFY_TEST_REQUIRE`), in which case it runs and fails. The
//! expansion also reads the rule's environment variables through `option_env!`, so cargo
//! rebuilds the test when one of them changes and the decision is never stale.

use proc_macro::{Delimiter, Group, TokenStream, TokenTree};

#[allow(dead_code)]
mod detect {
    include!("detect.rs");
}

use detect::{Service, TRACKED_ENV};

/// Marks a test as needing services: `#[needs(postgres)]`, `#[needs(chromium, shared)]`.
/// Put it above `#[test]` or `#[tokio::test]`.
#[proc_macro_attribute]
pub fn needs(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut services = Vec::new();
    for tree in args {
        match tree {
            TokenTree::Ident(ident) => match Service::parse(&ident.to_string()) {
                Some(s) => services.push(s),
                None => {
                    return error(&format!(
                        "unknown service `{ident}`: expected postgres, chromium or shared"
                    ))
                }
            },
            TokenTree::Punct(p) if p.as_char() == ',' => {}
            other => return error(&format!("unexpected `{other}` in needs(...)")),
        }
    }
    if services.is_empty() {
        return error("needs(...) names no service");
    }
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let reasons: Vec<String> = services
        .iter()
        .filter(|s| !s.required())
        .filter_map(|s| s.find(&workspace).err())
        .collect();
    let mut out = String::from("const _: () = {");
    for var in TRACKED_ENV {
        out.push_str(&format!("let _ = ::core::option_env!({var:?});"));
    }
    out.push_str("};");
    if !reasons.is_empty() {
        out.push_str(&format!("#[ignore = {:?}]", reasons.join("; ")));
    }
    let mut stream: TokenStream = match out.parse() {
        Ok(s) => s,
        Err(e) => return error(&format!("needs(...): {e}")),
    };
    stream.extend(item);
    stream
}

fn error(message: &str) -> TokenStream {
    let lit = TokenTree::Literal(proc_macro::Literal::string(message));
    let group = TokenTree::Group(Group::new(Delimiter::Parenthesis, lit.into()));
    let mut out: TokenStream = "::core::compile_error!".parse().unwrap_or_default();
    out.extend([group]);
    out.extend("; ".parse::<TokenStream>().unwrap_or_default());
    out
}
