use super::*;
use crate::load_catalog_yaml;

fn catalog(yaml: &str) -> Catalog {
    load_catalog_yaml(yaml)
        .unwrap_or_else(|e| panic!("{e}"))
        .catalog
}

/// (object, path, code) of every violation.
fn found(yaml: &str) -> Vec<(String, String, &'static str)> {
    validate_catalog(&catalog(yaml))
        .iter()
        .map(|v| (v.object.to_string(), v.path.clone(), v.problem.code()))
        .collect()
}

fn one(object: &str, path: &str, code: &'static str) -> Vec<(String, String, &'static str)> {
    vec![(object.to_string(), path.to_string(), code)]
}

const BASE: &str = r#"
apiVersion: tollgate.dev/v1alpha1
kind: Plan
metadata: {name: pro}
spec:
  features:
    - {id: model.large, kind: boolean}
    - {id: tier, kind: configuration, choices: [low, high], value: {choice: high}}
    - {id: tokens, kind: metered, meter: llm.tokens, limit: {amount: 1000}}
  rateCard:
    - {feature: tokens, microCredits: 5, perUnits: 1000}
"#;

fn with(extra: &str) -> String {
    format!("{BASE}---\n{extra}")
}

#[test]
fn a_good_catalog_has_no_violation() {
    assert_eq!(found(BASE), vec![]);
}

#[test]
fn a_duplicate_feature_id_is_named() {
    let yaml = BASE.replace(
        "- {id: tier,",
        "- {id: model.large, kind: boolean}\n    - {id: tier,",
    );
    assert_eq!(
        found(&yaml),
        one("Plan/pro", "spec.features[].id[1]", "duplicate")
    );
}

#[test]
fn a_rate_card_on_a_non_metered_feature_is_refused() {
    let yaml = BASE.replace(
        "- {feature: tokens,",
        "- {feature: model.large, microCredits: 1}\n    - {feature: tokens,",
    );
    assert_eq!(
        found(&yaml),
        one("Plan/pro", "spec.rateCard[0].feature", "wrong_feature_kind")
    );
}

/// Usage with model=large and region=eu would match both lines: which price applies must not
/// depend on their order. Lines of one dimension, and a default line, are fine.
#[test]
fn rate_lines_of_one_feature_on_different_dimensions_are_refused() {
    let lines = "  rateCard:\n    - {feature: tokens, dimension: {name: model, value: large}, microCredits: 9}\n    - {feature: tokens, dimension: {name: model, value: small}, microCredits: 2}\n";
    assert_eq!(found(&BASE.replace("  rateCard:\n", lines)), vec![]);
    let mixed = format!(
        "{lines}    - {{feature: tokens, dimension: {{name: region, value: eu}}, microCredits: 3}}\n"
    );
    let yaml = BASE.replace("  rateCard:\n", &mixed);
    assert_eq!(
        found(&yaml),
        one(
            "Plan/pro",
            "spec.rateCard[2].dimension.name",
            "rate_dimensions_differ"
        )
    );
    let message = validate_catalog(&catalog(&yaml))[0].problem.to_string();
    assert!(
        message.contains("by dimension region")
            && message.contains("spec.rateCard[0] prices it by model"),
        "{message}"
    );
}

#[test]
fn a_duplicate_rate_line_is_refused() {
    let yaml = BASE.replace(
        "  rateCard:\n",
        "  rateCard:\n    - {feature: tokens, microCredits: 7}\n",
    );
    assert_eq!(
        found(&yaml),
        one("Plan/pro", "spec.rateCard[1]", "duplicate")
    );
}

#[test]
fn zero_limits_and_amounts_are_refused_with_their_value() {
    let yaml = BASE
        .replace("limit: {amount: 1000}", "limit: {amount: 0}")
        .replace(
            "  rateCard:",
            "  includedGrants:\n    - {id: monthly, amountMicroCredits: 0}\n  rateCard:",
        );
    let violations = validate_catalog(&catalog(&yaml));
    let shown: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "Plan/pro: spec.features[2].limit.amount = 0: must be greater than 0",
            "Plan/pro: spec.includedGrants[0].amountMicroCredits = 0: must be greater than 0",
        ]
    );
}

#[test]
fn fields_of_another_feature_kind_are_refused() {
    let yaml = BASE.replace(
        "{id: model.large, kind: boolean}",
        "{id: model.large, kind: boolean, meter: x}",
    );
    assert_eq!(
        found(&yaml),
        one("Plan/pro", "spec.features[0].meter", "not_for_this_kind")
    );
    let yaml = BASE.replace(
        "meter: llm.tokens, limit: {amount: 1000}",
        "meter: llm.tokens",
    );
    assert_eq!(
        found(&yaml),
        one("Plan/pro", "spec.features[2].limit", "required")
    );
}

#[test]
fn a_choice_outside_the_choices_is_refused() {
    let yaml = BASE.replace("value: {choice: high}", "value: {choice: medium}");
    assert_eq!(
        found(&yaml),
        one(
            "Plan/pro",
            "spec.features[1].value.choice",
            "unknown_choice"
        )
    );
}

#[test]
fn a_feature_declared_differently_by_two_plans_is_refused_on_the_later_plan() {
    let yaml = with(
        "apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: zeta}\nspec:\n  features:\n    - {id: tokens, kind: metered, meter: other.meter, limit: {unlimited: true}}\n",
    );
    assert_eq!(
        found(&yaml),
        one("Plan/zeta", "spec.features[0]", "inconsistent_feature")
    );
}

#[test]
fn overdraft_needs_a_floor() {
    let yaml = BASE.to_string() + "  overage: {action: allowOverdraft}\n";
    assert_eq!(
        found(&yaml),
        one(
            "Plan/pro",
            "spec.overage.overdraftFloorMicroCredits",
            "required"
        )
    );
}

#[test]
fn an_entitlement_with_unknown_references_reports_each() {
    let yaml = with(
        r#"apiVersion: tollgate.dev/v1alpha1
kind: Entitlement
metadata: {name: addon}
spec:
  target: {plans: [pro, gold]}
  features:
    - {feature: model.huge, enabled: true}
    - {feature: tokens, enabled: true}
    - {feature: tokens, limit: {amount: 5}}
"#,
    );
    assert_eq!(
        found(&yaml),
        vec![
            (
                "Entitlement/addon".into(),
                "spec.target.plans[1]".into(),
                "unknown_plan"
            ),
            (
                "Entitlement/addon".into(),
                "spec.features[].feature[2]".into(),
                "duplicate"
            ),
            (
                "Entitlement/addon".into(),
                "spec.features[0].feature".into(),
                "unknown_feature"
            ),
            (
                "Entitlement/addon".into(),
                "spec.features[1].feature".into(),
                "wrong_feature_kind"
            ),
        ]
    );
}

#[test]
fn a_window_that_ends_before_it_starts_is_refused() {
    let yaml = with(
        r#"apiVersion: tollgate.dev/v1alpha1
kind: Entitlement
metadata: {name: promo}
spec:
  target: {customers: [cus_1]}
  window: {start: "2026-02-01T00:00:00Z", end: "2026-01-01T00:00:00Z"}
  features: [{feature: model.large, enabled: true}]
"#,
    );
    assert_eq!(
        found(&yaml),
        one(
            "Entitlement/promo",
            "spec.window.end",
            "window_ends_before_start"
        )
    );
}

#[test]
fn an_entitlement_needs_exactly_one_target() {
    let yaml = with(
        "apiVersion: tollgate.dev/v1alpha1\nkind: Entitlement\nmetadata: {name: e}\nspec:\n  target: {}\n  features: [{feature: model.large, enabled: true}]\n",
    );
    assert_eq!(
        found(&yaml),
        one("Entitlement/e", "spec.target", "exactly_one_of")
    );
}

#[test]
fn budget_caps_check_their_feature_and_scope() {
    let yaml = with(
        r#"apiVersion: tollgate.dev/v1alpha1
kind: BudgetCap
metadata: {name: cap}
spec:
  scope: {level: customer, subjects: [team-a]}
  limit: {usage: {feature: model.large, units: 0}}
"#,
    );
    assert_eq!(
        found(&yaml),
        vec![
            (
                "BudgetCap/cap".into(),
                "spec.scope.subjects".into(),
                "not_for_this_kind"
            ),
            (
                "BudgetCap/cap".into(),
                "spec.limit.usage.feature".into(),
                "wrong_feature_kind"
            ),
            (
                "BudgetCap/cap".into(),
                "spec.limit.usage.units".into(),
                "not_positive"
            ),
        ]
    );
}

#[test]
fn duplicate_object_names_are_refused() {
    let yaml =
        with("apiVersion: tollgate.dev/v1alpha1\nkind: Plan\nmetadata: {name: pro}\nspec: {}\n");
    assert_eq!(
        found(&yaml),
        one("Plan/pro", "metadata.name", "duplicate_name")
    );
}

#[test]
fn ids_follow_the_id_rules() {
    assert!(is_valid_id("model.gpt-4o_mini"));
    for bad in ["", "Model", "-x", "x-", "a b", &"x".repeat(64)] {
        assert!(!is_valid_id(bad), "{bad:?}");
    }
}

/// The base catalog and the Entitlement `addon` with this target and one feature grant.
fn with_entitlement(target: &str, grant: &str) -> String {
    with(&format!(
        "apiVersion: tollgate.dev/v1alpha1
kind: Entitlement
metadata: {{name: addon}}
spec:
  target: {target}
  features:
    - {grant}
"
    ))
}

#[test]
fn an_add_on_limit_of_another_period_than_the_plans_is_refused() {
    let addon = |limit: &str| {
        with_entitlement(
            "{plans: [pro]}",
            &format!("{{feature: tokens, limit: {limit}}}"),
        )
    };
    // The plan's limit resets monthly (the default) from the subscription start.
    assert_eq!(found(&addon("{amount: 5000}")), vec![]);
    assert_eq!(found(&addon("{unlimited: true, reset: year}")), vec![]);
    assert_eq!(
        found(&addon("{amount: 1001, reset: year}")),
        one(
            "Entitlement/addon",
            "spec.features[0].limit.reset",
            "limit_period_differs"
        )
    );
    let message =
        validate_catalog(&catalog(&addon("{amount: 1001, anchor: calendar}")))[0].to_string();
    assert!(
        message.contains("plan pro resets this feature month"),
        "{message}"
    );
}

#[test]
fn an_id_longer_than_the_api_takes_is_refused() {
    let cap = |customer: &str| {
        with_entitlement(
            &format!("{{customers: [{customer}]}}"),
            "{feature: model.large, enabled: true}",
        )
    };
    assert_eq!(found(&cap(&"c".repeat(128))), vec![]);
    assert_eq!(
        found(&cap(&"c".repeat(129))),
        one("Entitlement/addon", "spec.target.customers[0]", "too_long")
    );
}

#[test]
fn an_external_id_with_space_at_an_end_or_a_control_character_is_refused() {
    let target = |customer: &str| {
        with_entitlement(
            &format!("{{customers: [{customer}]}}"),
            "{feature: model.large, enabled: true}",
        )
    };
    // Anything else goes: ids come from the product's own systems.
    assert_eq!(found(&target("'Acme Inc. #1/eu'")), vec![]);
    for (customer, code) in [
        ("' acme'", "surrounding_space"),
        ("'acme '", "surrounding_space"),
        ("\"acme\\n\"", "surrounding_space"),
        ("\"ac\\tme\"", "control_character"),
        ("'   '", "empty"),
    ] {
        assert_eq!(
            found(&target(customer)),
            one("Entitlement/addon", "spec.target.customers[0]", code),
            "{customer}"
        );
    }
}

#[test]
fn an_object_name_kubectl_would_refuse_is_refused() {
    for bad in ["Pro Plan/2", "Pro", "-pro", "pro-"] {
        let yaml = BASE.replace(
            "metadata: {name: pro}",
            &format!("metadata: {{name: \"{bad}\"}}"),
        );
        let codes: Vec<_> = found(&yaml)
            .into_iter()
            .map(|(_, path, code)| (path, code))
            .collect();
        assert!(
            codes.contains(&("metadata.name".to_string(), "invalid_name")),
            "{bad}: {codes:?}"
        );
    }
    let dotted = BASE.replace("metadata: {name: pro}", "metadata: {name: pro.v2}");
    assert_eq!(found(&dotted), vec![]);
}

/// The CRD schema's pattern for external ids, as the API server and kubectl would apply it.
fn schema_pattern() -> regex::Regex {
    regex::Regex::new(EXTERNAL_ID_PATTERN).unwrap()
}

/// What the schema refuses, the rule refuses too: `kubectl apply` never turns away an id
/// the runtime would take.
fn schema_is_never_stricter(id: &str) {
    if !schema_pattern().is_match(id) {
        assert!(
            check_external_id(id).is_err(),
            "the schema refuses {id:?}, which the rule accepts"
        );
    }
}

#[test]
fn the_schema_pattern_refuses_what_the_rule_refuses_in_ascii_and_control_characters() {
    let pattern = schema_pattern();
    for ok in [
        "acme",
        "cus_123",
        "a",
        "a b",
        "Acme Inc.",
        "Åcme",
        "エージェント",
    ] {
        assert!(pattern.is_match(ok), "{ok:?}");
        assert_eq!(check_external_id(ok), Ok(()), "{ok:?}");
    }
    for bad in [
        "",
        " ",
        " acme",
        "acme ",
        "ac\tme",
        "acme\n",
        "\racme",
        "a\u{0}b",
        "\u{7f}x",
        "x\u{85}",
        "a\u{9f}b",
        "\u{1b}[31m",
    ] {
        assert!(!pattern.is_match(bad), "the schema takes {bad:?}");
        assert!(check_external_id(bad).is_err(), "the rule takes {bad:?}");
    }
    // Left to the rule: white space beyond ASCII at an end, and length in bytes.
    for rule_only in ["\u{a0}acme", "acme\u{3000}", &"é".repeat(100)] {
        assert!(pattern.is_match(rule_only), "{rule_only:?}");
        assert!(check_external_id(rule_only).is_err(), "{rule_only:?}");
    }
}

proptest::proptest! {
    #[test]
    fn the_schema_pattern_is_never_stricter_than_the_rule(id in "\\PC{0,8}|[ -~\t\n\r\u{0}-\u{1f}\u{7f}-\u{a0}\u{2000}-\u{200b}\u{3000}é]{0,12}") {
        schema_is_never_stricter(&id);
    }

    #[test]
    fn for_ascii_ids_the_schema_pattern_and_the_rule_agree(id in "[\u{0}-\u{7f}]{0,16}") {
        schema_is_never_stricter(&id);
        proptest::prop_assert_eq!(schema_pattern().is_match(&id), check_external_id(&id).is_ok());
    }
}
