use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::ledger::{Measure, Timestamp};

/// 2026-03-10T12:00:00Z
const NOW: Timestamp = Timestamp(1_773_144_000_000);

fn example() -> Policy {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/catalog");
    let loaded = tollgate_crds::load_catalog_dir(&dir).expect("example catalog loads");
    compile(&loaded.catalog).expect("example catalog compiles")
}

fn sub(plan: &str) -> SubscriptionView {
    SubscriptionView {
        plan: plan.into(),
        since: Timestamp(NOW.0 - 5 * 86_400_000),
    }
}

fn request<'a>(
    customer: &'a str,
    s: &'a SubscriptionView,
    subject: &'a Subject,
    feature: &'a str,
    dims: &'a BTreeMap<String, String>,
    units: u64,
) -> Request<'a> {
    Request {
        customer,
        subscription: Some(s),
        subject,
        feature,
        dimensions: dims,
        units,
        now: NOW,
    }
}

#[test]
fn the_example_catalog_compiles_with_a_content_version() {
    let policy = example();
    assert!(policy.version.starts_with("sha256:"), "{}", policy.version);
    assert!(policy.plan("pro").is_some() && policy.has_feature("llm-tokens"));
}

#[test]
fn prices_the_dimension_line_before_the_default() {
    let policy = example();
    let mut dims = BTreeMap::new();
    dims.insert("model".to_string(), "gpt-large".to_string());
    let s = sub("pro");
    let subject = Subject::default();
    let eval = policy
        .evaluate(&request("cus_1", &s, &subject, "llm-tokens", &dims, 2_000))
        .unwrap();
    assert_eq!(eval.credits, 1_000_000, "2k tokens at 0.5 credits per 1k");
    dims.insert("model".to_string(), "other".to_string());
    let eval = policy
        .evaluate(&request("cus_1", &s, &subject, "llm-tokens", &dims, 2_000))
        .unwrap();
    assert_eq!(eval.credits, 200_000, "the default line");
    assert_eq!(eval.limits[0].charge.measure, Measure::Units);
    assert!(
        !eval.limits[0].charge.enforce,
        "pro tokens are a soft limit"
    );
}

/// The free plan prices tokens only for model=gpt-small: usage of another model, or of no
/// model, is refused rather than given away; a rate-less feature stays free.
#[test]
fn usage_the_plan_prices_by_a_dimension_without_a_rate_for_it_is_refused() {
    let policy = example();
    let s = sub("free");
    let subject = Subject::default();
    let mut dims = BTreeMap::new();
    dims.insert("model".to_string(), "gpt-small".to_string());
    let eval = policy
        .evaluate(&request("cus_1", &s, &subject, "llm-tokens", &dims, 1_000))
        .unwrap();
    assert_eq!(eval.credits, 20_000);
    dims.insert("model".to_string(), "gpt-large".to_string());
    let refused = policy
        .evaluate(&request("cus_1", &s, &subject, "llm-tokens", &dims, 1_000))
        .unwrap_err();
    assert_eq!(
        refused,
        Denial::NotPriced {
            plan: "free".into(),
            feature: "llm-tokens".into(),
            dimension: "model".into(),
            value: Some("gpt-large".into()),
        }
    );
    assert!(
        refused
            .message("cus_1")
            .contains("plan free prices llm-tokens by model, and has no rate for model=gpt-large"),
        "{}",
        refused.message("cus_1")
    );
    let none = BTreeMap::new();
    let refused = policy
        .evaluate(&request("cus_1", &s, &subject, "llm-tokens", &none, 1_000))
        .unwrap_err();
    assert!(
        refused
            .message("cus_1")
            .contains("the usage gives no model"),
        "{refused:?}"
    );
    // A plan with a line without a dimension prices every other model by it (pro), and a
    // feature without any line is free.
    let pro = sub("pro");
    let eval = policy
        .evaluate(&request(
            "cus_1",
            &pro,
            &subject,
            "llm-tokens",
            &none,
            1_000,
        ))
        .unwrap();
    assert_eq!(eval.credits, 100_000);
}

#[test]
fn no_entitlement_and_no_subscription() {
    let policy = example();
    let s = sub("free");
    let subject = Subject::default();
    let dims = BTreeMap::new();
    let denial = policy
        .evaluate(&request("cus_1", &s, &subject, "model.gpt-large", &dims, 0))
        .unwrap_err();
    assert_eq!(
        denial,
        Denial::NoEntitlement {
            feature: "model.gpt-large".into()
        }
    );
    let none = Request {
        subscription: None,
        ..request("cus_1", &s, &subject, "llm-tokens", &dims, 1)
    };
    assert_eq!(policy.evaluate(&none).unwrap_err(), Denial::NoSubscription);
}

#[test]
fn agent_caps_apply_only_with_an_agent_and_in_level_order() {
    let policy = example();
    let s = sub("pro");
    let mut dims = BTreeMap::new();
    dims.insert("model".to_string(), "gpt-large".to_string());
    let agent = Subject {
        agent: Some("bot-1".into()),
        ..Subject::default()
    };
    let eval = policy
        .evaluate(&request("cus_1", &s, &agent, "llm-tokens", &dims, 1_000))
        .unwrap();
    let names: Vec<_> = eval
        .limits
        .iter()
        .map(|l| l.charge.counter.as_str())
        .collect();
    assert_eq!(
        names,
        vec![
            "ent/cus_1/llm-tokens",
            "cap/agent-daily-spend/cus_1/agent:bot-1",
            "cap/agent-large-model-tokens/cus_1/agent:bot-1"
        ]
    );
    let nobody = Subject::default();
    let eval = policy
        .evaluate(&request("cus_1", &s, &nobody, "llm-tokens", &dims, 1_000))
        .unwrap();
    assert_eq!(eval.limits.len(), 1, "no agent, no agent caps");
}

#[test]
fn the_most_generous_entitlement_wins_inside_its_window() {
    let policy = example();
    let s = sub("enterprise");
    let during = Timestamp(1_775_000_000_000); // 2026-04
    let globex = policy
        .effective_feature("cus_globex", Some(&s), "context-window", during)
        .unwrap();
    assert_eq!(globex.value, Some(FeatureValue::Number(1_000_000)));
    assert_eq!(globex.source, "entitlement/contract-globex");
    let after = Timestamp(1_800_000_000_000); // 2027
    let later = policy
        .effective_feature("cus_globex", Some(&s), "context-window", after)
        .unwrap();
    assert_eq!(later.value, Some(FeatureValue::Number(200_000)));
}

/// An add-on never makes a limit stricter: a hard 2,000 on a plan's soft 1,000 gives a soft
/// 2,000 (it denied past 2,000 before), and a soft 500 on a plan's hard 1,000 gives a soft
/// 1,000.
#[test]
fn an_add_on_merges_generously_amount_and_enforcement_alike() {
    let yaml = |plan_limit: &str, addon_limit: &str| {
        format!(
            "apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {{name: team}}
spec:
  features:
    - {{id: tokens, kind: metered, meter: tokens, limit: {plan_limit}}}
---
apiVersion: tollgate.dev/v1alpha1
kind: Entitlement
metadata: {{name: addon}}
spec:
  target: {{plans: [team]}}
  features:
    - {{feature: tokens, limit: {addon_limit}}}
"
        )
    };
    let effective = |text: String| {
        let loaded = tollgate_crds::load_catalog_yaml(&text).unwrap();
        let policy = compile(&loaded.catalog).unwrap();
        policy
            .effective_feature("cus_1", Some(&sub("team")), "tokens", NOW)
            .unwrap()
            .limit
            .unwrap()
    };
    let up = effective(yaml(
        "{amount: 1000, enforcement: soft, reset: month}",
        "{amount: 2000, enforcement: hard, reset: month}",
    ));
    assert_eq!((up.amount, up.hard), (Some(2000), false));
    let down = effective(yaml(
        "{amount: 1000, enforcement: hard, reset: month}",
        "{amount: 500, enforcement: soft, reset: month}",
    ));
    assert_eq!((down.amount, down.hard), (Some(1000), false));
    let both_hard = effective(yaml(
        "{amount: 1000, reset: month}",
        "{amount: 2000, reset: month}",
    ));
    assert_eq!((both_hard.amount, both_hard.hard), (Some(2000), true));
}
