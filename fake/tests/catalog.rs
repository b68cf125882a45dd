//! The catalog: pages, schemas as written, models changed at run time, faults a catalog
//! reader must survive.

use runcomfy_fake::{FakeServer, Fault, ModelSpec, Route, FAKE_TOKEN};
use serde_json::{json, Value};

fn schema(n: usize) -> String {
    json!({"type": "object", "required": ["prompt"], "properties": {
        "prompt": {"type": "string", "description": format!("model {n}")},
        "strength": {"type": "float", "minimum": 0, "maximum": 1},
    }})
    .to_string()
}

async fn get(server: &FakeServer, path_and_query: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path_and_query}", server.base_url()))
        .bearer_auth(FAKE_TOKEN)
        .send()
        .await
        .expect("request")
}

async fn page(server: &FakeServer, query: &str) -> Value {
    let answer = get(server, &format!("/v1/models?{query}")).await;
    assert_eq!(answer.status(), 200);
    answer.json().await.expect("json")
}

#[tokio::test]
async fn pages_past_one_hundred_models_with_their_schemas_as_written() {
    let mut builder = FakeServer::builder();
    for n in 0..150 {
        builder = builder.model(&format!("vendor/model-{n:03}/text-to-image"), &schema(n));
    }
    let server = builder.start().await.expect("server");
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let body = page(
            &server,
            &format!("limit=100&offset={offset}&include_schema=true"),
        )
        .await;
        assert_eq!(body["total"], 150);
        let models = body["models"].as_array().expect("models").clone();
        if models.is_empty() {
            break;
        }
        for m in &models {
            // The dialect as written, `float` included.
            assert_eq!(m["input_schema"]["properties"]["strength"]["type"], "float");
            seen.push(m["model_id"].as_str().expect("id").to_owned());
        }
        offset += models.len();
    }
    assert_eq!(seen.len(), 150);
    assert_eq!(seen[0], "vendor/model-000/text-to-image");
    assert_eq!(seen[149], "vendor/model-149/text-to-image");
    // Without include_schema, no schema; the default page is 20.
    let body = page(&server, "").await;
    assert_eq!(body["models"].as_array().map(Vec::len), Some(20));
    assert!(body["models"][0].get("input_schema").is_none());
    for bad in ["limit=0", "limit=101", "offset=-1"] {
        assert_eq!(
            get(&server, &format!("/v1/models?{bad}")).await.status(),
            422,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn output_schemas_prices_and_schemaless_models_are_listed() {
    let output =
        json!({"type": "object", "properties": {"video": {"type": "string", "format": "uri"}}});
    let server = FakeServer::builder()
        .add_model(
            ModelSpec::new("acme/clip/text-to-video", schema(1))
                .output_schema(output.clone())
                .price(0.07, "second"),
        )
        .add_model(ModelSpec::without_schema("acme/raw/text-to-image"))
        .start()
        .await
        .expect("server");
    let body = page(&server, "include_schema=true").await;
    let clip = &body["models"][0];
    assert_eq!(clip["output_schema"], output);
    assert_eq!(clip["base_price_usd"], 0.07);
    assert_eq!(clip["price_unit"], "second");
    let raw = &body["models"][1];
    assert_eq!(raw["model_id"], "acme/raw/text-to-image");
    assert!(raw.get("input_schema").is_none(), "{raw}");
    // A model without a schema takes any body.
    let client = server.client().expect("client");
    client
        .submit_json("acme/raw/text-to-image", &json!({"anything": [1, 2]}))
        .await
        .expect("unchecked submit");
}

#[tokio::test]
async fn a_schema_changed_or_removed_at_run_time() {
    let id = "acme/echo/text-to-image";
    let server = FakeServer::builder()
        .model(id, &schema(1))
        .start()
        .await
        .expect("server");
    let client = server.client().expect("client");
    client
        .submit_json(id, &json!({"prompt": "a"}))
        .await
        .expect("valid under the first schema");

    // A new required field: the catalog serves it and submits are checked against it.
    let changed = r#"{"type":"object","required":["prompt","seed"],"properties":{"prompt":{"type":"string"},"seed":{"type":"integer","minimum":0}}}"#;
    server.set_model(ModelSpec::new(id, changed)).expect("set");
    let entry: Value = get(&server, &format!("/v1/models/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(entry["input_schema"]["required"], json!(["prompt", "seed"]));
    assert!(client
        .submit_json(id, &json!({"prompt": "a"}))
        .await
        .is_err());
    client
        .submit_json(id, &json!({"prompt": "a", "seed": 3}))
        .await
        .expect("valid under the new schema");

    // A schema the generator refuses is refused, the old one stays; as is, it is served.
    let broken = r#"{"type":"object","properties":{"seed":{"type":"int"}}}"#;
    let err = server.set_model(ModelSpec::new(id, broken)).unwrap_err();
    assert!(
        err.to_string().contains("unsupported type \"int\""),
        "{err}"
    );
    assert_eq!(server.stats().jobs, 2);
    server
        .set_model(ModelSpec::new(id, broken).as_is())
        .expect("as is");
    let body = page(&server, "include_schema=true").await;
    assert_eq!(
        body["models"][0]["input_schema"]["properties"]["seed"]["type"],
        "int"
    );

    // Removed: gone from the catalog, unknown to submits.
    assert!(server.remove_model(id));
    assert!(!server.remove_model(id));
    assert_eq!(page(&server, "").await["total"], 0);
    assert_eq!(
        get(&server, &format!("/v1/models/{id}")).await.status(),
        400
    );
    assert!(client
        .submit_json(id, &json!({"prompt": "a"}))
        .await
        .is_err());
    assert_eq!(server.stats().jobs, 2);
}

#[tokio::test]
async fn catalog_faults_a_reader_must_survive() {
    let server = FakeServer::builder()
        .model("acme/echo/text-to-image", &schema(1))
        .start()
        .await
        .expect("server");
    server.inject(Route::ListModels, Fault::not_json());
    server.inject(Route::ListModels, Fault::unauthorized());
    server.inject(Route::ListModels, Fault::rate_limited(Some("3")));

    let html = get(&server, "/v1/models").await;
    assert_eq!(html.status(), 200);
    assert!(html.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    assert!(html.json::<Value>().await.is_err(), "not JSON");

    let denied = get(&server, "/v1/models").await;
    assert_eq!(denied.status(), 401);
    let limited = get(&server, "/v1/models").await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "3");
    // Then the normal page again.
    assert_eq!(page(&server, "").await["total"], 1);
    assert_eq!(server.count(Route::ListModels), 4);
}

#[tokio::test]
async fn models_from_a_folder_and_the_shipped_models() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let from_dir = FakeServer::builder()
        .models_from_dir(&dir)
        .start()
        .await
        .expect("server");
    let shipped = FakeServer::start_with_all_models().await.expect("server");
    assert_eq!(from_dir.model_ids(), shipped.model_ids());
    assert!(shipped.model_ids().len() >= 13);
    // The folder's schemas are served as written, output schemas included.
    let body = page(&from_dir, "include_schema=true&limit=100").await;
    let with_output = body["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter(|m| m.get("output_schema").is_some())
        .count();
    assert!(with_output >= 1);
    let missing = FakeServer::builder()
        .models_from_dir(dir.join("no-such-folder"))
        .start()
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("schema folder not found"),
        "{missing}"
    );
}
