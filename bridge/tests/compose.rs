//! The deployment files: docker-compose.yml must describe RabbitMQ (with a
//! health check) and the bridge (built by the Dockerfile, started once
//! RabbitMQ is healthy, pointed at it).

use std::path::PathBuf;

use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn compose() -> Value {
    let text =
        std::fs::read_to_string(root().join("docker-compose.yml")).expect("docker-compose.yml");
    serde_yaml::from_str(&text).expect("valid YAML")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn rabbitmq_service() {
    let c = compose();
    let r = &c["services"]["rabbitmq"];
    assert_eq!(r["image"].as_str(), Some("rabbitmq:3.12-management"));
    let ports = strings(&r["ports"]);
    assert!(ports.iter().any(|p| p == "5672:5672"), "{ports:?}");
    assert!(ports.iter().any(|p| p == "15672:15672"), "{ports:?}");
    let test = strings(&r["healthcheck"]["test"]).join(" ");
    assert!(test.contains("rabbitmq-diagnostics -q ping"), "{test}");
}

#[test]
fn bridge_service() {
    let c = compose();
    let b = &c["services"]["bridge"];
    assert_eq!(b["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    assert_eq!(
        b["depends_on"]["rabbitmq"]["condition"].as_str(),
        Some("service_healthy")
    );
    let env = &b["environment"];
    assert_eq!(env["BIND"].as_str(), Some("0.0.0.0:8080"));
    let url = env["AMQP_URL"].as_str().expect("AMQP_URL");
    assert!(
        url.starts_with("amqp://") && url.contains("@rabbitmq:5672"),
        "{url}"
    );
    // guest may only log in from localhost: the URL's user must exist in the broker.
    let r_env = &c["services"]["rabbitmq"]["environment"];
    let user = r_env["RABBITMQ_DEFAULT_USER"].as_str().unwrap_or("guest");
    let pass = r_env["RABBITMQ_DEFAULT_PASS"].as_str().unwrap_or("guest");
    assert!(url.contains(&format!("//{user}:{pass}@")), "{url}");
    assert_ne!(user, "guest");
    assert!(strings(&b["ports"]).iter().any(|p| p == "8080:8080"));
}

#[test]
fn dockerfile_builds_page_and_bridge() {
    let d = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    assert!(
        d.contains("cargo xtask build-web"),
        "builds the wasm front end"
    );
    assert!(
        d.contains("cargo build --release -p bridge"),
        "builds the bridge"
    );
    assert!(d.matches("FROM ").count() >= 2, "multi-stage");
    assert!(d.contains("BIND=0.0.0.0:8080"));
}
