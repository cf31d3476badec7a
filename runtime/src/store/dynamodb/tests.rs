//! Unit tests that need no DynamoDB; the store's behaviour against DynamoDB Local is in
//! runtime/tests/dynamodb_*.rs.

use super::*;

fn local_config() -> DynamoConfig {
    DynamoConfig {
        endpoint: Some("http://127.0.0.1:9".into()),
        credentials: Credentials::Static {
            access_key_id: "local".into(),
            secret_access_key: "local".into(),
        },
        ..DynamoConfig::new("us-east-1", "unit-")
    }
}

type Breakage = fn(&mut DynamoConfig);

#[test]
fn bad_configuration_names_the_field() {
    let cases: [(&str, Breakage); 4] = [
        ("region", |c| c.region.clear()),
        ("table_prefix", |c| c.table_prefix = "bad prefix".into()),
        ("endpoint", |c| c.endpoint = Some("127.0.0.1:8000".into())),
        ("calls.max_attempts", |c| c.calls.max_attempts = 0),
    ];
    for (field, break_it) in cases {
        let mut config = local_config();
        break_it(&mut config);
        let error = DynamoConnection::connect(config).unwrap_err();
        assert!(
            matches!(&error, StoreError::Dynamo(DynamoError::Config { field: f, .. }) if *f == field),
            "{field}: {error}"
        );
        assert!(!error.is_transient());
    }
}

#[test]
fn partition_and_owner_names_are_checked() {
    let connection = DynamoConnection::connect(local_config()).unwrap();
    for bad in ["", "a#b", "has space", &"p".repeat(65)] {
        assert!(connection.store(bad, "pod-0").is_err(), "{bad:?}");
    }
    assert!(connection.store("p-0001", "").is_err());
    let store = connection.store("p-0001", "pod-0").unwrap();
    assert_eq!(store.epoch(), 0);
}

#[test]
fn an_unreachable_endpoint_fails_transiently_within_the_deadline() {
    let mut config = local_config();
    config.calls.call_deadline = std::time::Duration::from_millis(800);
    config.calls.attempt_timeout = std::time::Duration::from_millis(300);
    let mut store = DynamoStore::open(config, "p0", "pod-0").unwrap();
    let started = std::time::Instant::now();
    let error = store.recover(&mut |_| Ok(())).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.code(), "dynamodb_unavailable");
}

#[test]
fn fenced_errors_say_who_holds_the_partition() {
    let error = StoreError::from(DynamoError::Fenced {
        partition: "p0".into(),
        epoch: 3,
        current_epoch: 4,
        current_owner: "pod-1".into(),
    });
    assert_eq!(error.code(), "dynamodb_fenced");
    assert!(!error.is_transient());
    let text = error.to_string();
    assert!(text.contains("epoch 3") && text.contains("epoch 4") && text.contains("pod-1"));
}
