//! Egg import and export over REST: raw and multipart bodies, created then updated, both
//! export formats re-imported, and bad eggs refused with a 4xx that names the problem while
//! leaving every template as it was.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::api::{Api, error_code};

const PAPER: &str = include_str!("../../../catalyst-core/tests/eggs/pterodactyl-egg-paper.json");
const VANILLA: &str = include_str!("../../../catalyst-core/tests/eggs/egg-vanilla-minecraft.yaml");

async fn import(api: &Api, token: &str, content_type: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let headers = [("content-type", content_type)];
    let (status, v, _) = api.call_with(Method::POST, "/api/templates/import", Some(token), &headers, body.into()).await;
    (status, v)
}

/// A GET whose body is kept as text (the order of an egg's maps is its meaning).
async fn text(api: &Api, path: &str) -> (StatusCode, String, axum::http::HeaderMap) {
    use tower::ServiceExt;
    let req = axum::http::Request::get(path).header("authorization", format!("Bearer {}", api.admin));
    let res = api.router.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("response");
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20).await.expect("body");
    (status, String::from_utf8(bytes.to_vec()).expect("utf-8"), headers)
}

async fn count(api: &Api) -> u64 {
    api.ok(Method::GET, "/api/templates", &api.admin, None).await["total"].as_u64().expect("total")
}

#[tokio::test]
async fn eggs_import_raw_or_multipart_update_in_place_and_export_back() {
    let api = Api::new().await;
    let (status, paper) = import(&api, &api.admin, "application/json", PAPER).await;
    assert_eq!(status, StatusCode::CREATED, "{paper}");
    assert_eq!(paper["images"].as_array().map(Vec::len), Some(5), "{paper}");
    assert_eq!(paper["stop"]["value"], "stop");
    assert_eq!(paper["startup_mode"], "entrypoint");
    let (status, again) = import(&api, &api.admin, "text/plain", PAPER).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &paper["id"]), "the same egg updates: {again}");

    let boundary = "catalyst-test-boundary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"egg.yaml\"\r\n\
         Content-Type: application/yaml\r\n\r\n{VANILLA}\r\n--{boundary}--\r\n"
    );
    let (status, vanilla) = import(&api, &api.admin, &format!("multipart/form-data; boundary={boundary}"), form).await;
    assert_eq!(status, StatusCode::CREATED, "{vanilla}");
    assert_eq!(vanilla["egg"]["format"], "PLCN_v3");

    for (t, format) in [(&paper, "ptdl_v2"), (&paper, "plcn_v3"), (&vanilla, "ptdl_v2")] {
        let path = format!("/api/templates/{}/export?format={format}", t["id"].as_str().expect("id"));
        let (status, egg, headers) = text(&api, &path).await;
        assert_eq!(status, StatusCode::OK, "{egg}");
        assert!(headers["content-disposition"].to_str().is_ok_and(|d| d.starts_with("attachment")));
        let parsed: Value = serde_json::from_str(&egg).expect("an egg is JSON");
        assert_eq!(parsed["meta"]["version"], format.to_uppercase().replace("V", "v"));
        let (status, back) = import(&api, &api.admin, "application/json", egg).await;
        assert_eq!((status, &back["id"]), (StatusCode::OK, &t["id"]), "{format}: {back}");
        assert_eq!((&back["images"], &back["variables"]), (&t["images"], &t["variables"]), "{format}");
    }
    let path = format!("/api/templates/{}/export?format=toml", paper["id"].as_str().expect("id"));
    let (status, v, _) = api.call(Method::GET, &path, Some(&api.admin), None).await;
    assert_eq!((status, error_code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"), "{v}");
}

#[tokio::test]
async fn bad_eggs_get_a_4xx_that_names_the_problem_and_change_nothing() {
    let api = Api::new().await;
    let (_, paper) = import(&api, &api.admin, "application/json", PAPER).await;
    let before = count(&api).await;
    let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
                d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
                g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\nmeta: {version: PLCN_v3}\nname: bomb\n\
                docker_images: {x: y}\ntags: *h\n";
    let huge = format!(
        "{{\"meta\": {{\"version\": \"PTDL_v2\"}}, \"name\": \"huge\", \"variables\": [{}]}}",
        "{\"name\": \"v\", \"env_variable\": \"V\"},".repeat(300_000)
    );
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (PAPER[..PAPER.len() / 2].to_string(), StatusCode::UNPROCESSABLE_ENTITY, "JSON"),
        (bomb.to_string(), StatusCode::UNPROCESSABLE_ENTITY, "repetition limit"),
        (PAPER.replace("PTDL_v2", "PTDL_v7"), StatusCode::UNPROCESSABLE_ENTITY, "meta.version"),
        (
            PAPER.replace("\\\"server.properties\\\"", "\\\"../../etc/passwd\\\""),
            StatusCode::UNPROCESSABLE_ENTITY,
            "'..'",
        ),
        (
            PAPER.replace("nullable|string|max:20", "nullable|string|frobnicate"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "frobnicate",
        ),
        (PAPER.replace("\"SERVER_JARFILE\"", "\"HOME\""), StatusCode::UNPROCESSABLE_ENTITY, "reserved"),
        (huge, StatusCode::PAYLOAD_TOO_LARGE, "at most"),
    ];
    for (body, want, names) in cases {
        let (status, v) = import(&api, &api.admin, "application/json", body).await;
        assert_eq!(status, want, "{names}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{names}: {v}");
        assert_eq!(count(&api).await, before, "{names}: a refused egg left a template");
    }
    let kept =
        api.ok(Method::GET, &format!("/api/templates/{}", paper["id"].as_str().expect("id")), &api.admin, None).await;
    assert_eq!(kept, paper, "a refused re-import leaves the template as it was");

    let (_, customer) = api.user("customer").await;
    let (status, v) = import(&api, &customer, "application/json", PAPER).await;
    assert_eq!((status, error_code(&v)), (StatusCode::FORBIDDEN, "permission_denied"), "{v}");
}
