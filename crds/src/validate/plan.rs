//! Checks of one Plan on its own.

use super::features::{declared_in, kind_name};
use super::{Problem, Report};
use crate::common::DimensionMatch;
use crate::plan::{ConfigurationValue, Feature, FeatureKind, OverageAction, Plan};

pub(super) fn check(plan: &Plan, report: &mut Report<'_>) {
    let spec = &plan.spec;
    let ids: Vec<String> = spec.features.iter().map(|f| f.id.clone()).collect();
    report.unique("spec.features[].id", &ids);
    for (i, feature) in spec.features.iter().enumerate() {
        check_feature(&format!("spec.features[{i}]"), feature, report);
    }
    check_meters(&spec.features, report);

    // (feature, dimension) of each rate line seen so far, with its index.
    let mut seen_rates: Vec<(RateKey, usize)> = Vec::new();
    // The dimension name each feature is priced by, with the index of its first such line.
    let mut priced_by: Vec<(&String, &String, usize)> = Vec::new();
    for (i, rate) in spec.rate_card.iter().enumerate() {
        let path = format!("spec.rateCard[{i}]");
        match declared_in(&spec.features, &rate.feature) {
            None => report.add(
                &format!("{path}.feature"),
                &rate.feature,
                Problem::UnknownFeature {
                    feature: rate.feature.clone(),
                },
            ),
            Some(f) if f.kind != FeatureKind::Metered => {
                report.add(
                    &format!("{path}.feature"),
                    &rate.feature,
                    Problem::WrongFeatureKind {
                        feature: rate.feature.clone(),
                        expected: "metered".into(),
                        actual: kind_name(f.kind).into(),
                    },
                );
            }
            Some(_) => {}
        }
        if rate.per_units == 0 {
            report.add(&format!("{path}.perUnits"), &0, Problem::NotPositive);
        }
        if let Some(d) = &rate.dimension {
            report.id(&format!("{path}.dimension.name"), &d.name);
            report.external_id(&format!("{path}.dimension.value"), &d.value);
            match priced_by
                .iter()
                .find(|(feature, ..)| **feature == rate.feature)
            {
                Some((_, name, first)) if **name != d.name => report.add(
                    &format!("{path}.dimension.name"),
                    &d.name,
                    Problem::RateDimensionsDiffer {
                        feature: rate.feature.clone(),
                        name: d.name.clone(),
                        first: format!("spec.rateCard[{first}]"),
                        first_name: (*name).clone(),
                    },
                ),
                Some(_) => {}
                None => priced_by.push((&rate.feature, &d.name, i)),
            }
        }
        let key: RateKey = (&rate.feature, rate.dimension.as_ref());
        if let Some((_, first)) = seen_rates.iter().find(|(k, _)| *k == key) {
            let first = format!("spec.rateCard[{first}]");
            report.add(&path, rate, Problem::Duplicate { first });
        } else {
            seen_rates.push((key, i));
        }
    }

    let grant_ids: Vec<String> = spec.included_grants.iter().map(|g| g.id.clone()).collect();
    report.unique("spec.includedGrants[].id", &grant_ids);
    for (i, grant) in spec.included_grants.iter().enumerate() {
        let path = format!("spec.includedGrants[{i}]");
        report.id(&format!("{path}.id"), &grant.id);
        if grant.amount_micro_credits == 0 {
            report.add(
                &format!("{path}.amountMicroCredits"),
                &0,
                Problem::NotPositive,
            );
        }
        if grant.expires_after_seconds == Some(0) {
            report.add(
                &format!("{path}.expiresAfterSeconds"),
                &0,
                Problem::NotPositive,
            );
        }
    }

    let overage = &spec.overage;
    let floor_path = "spec.overage.overdraftFloorMicroCredits";
    match (overage.action, overage.overdraft_floor_micro_credits) {
        (OverageAction::AllowOverdraft, None) => {
            report.add(
                floor_path,
                &(),
                Problem::Required {
                    kind: "allowOverdraft".into(),
                },
            );
        }
        (OverageAction::AllowOverdraft, Some(0)) => {
            report.add(floor_path, &0, Problem::NotPositive)
        }
        (OverageAction::Deny, Some(floor)) => {
            report.add(
                floor_path,
                &floor,
                Problem::NotForThisKind {
                    kind: "allowOverdraft".into(),
                },
            );
        }
        _ => {}
    }
}

/// A rate line's identity: its feature and dimension.
type RateKey<'a> = (&'a String, Option<&'a DimensionMatch>);

fn check_feature(path: &str, f: &Feature, report: &mut Report<'_>) {
    report.id(&format!("{path}.id"), &f.id);
    let kind = kind_name(f.kind);
    let not_for = |field: &str, report: &mut Report<'_>, value: serde_json::Value| {
        report.add(
            &format!("{path}.{field}"),
            &value,
            Problem::NotForThisKind {
                kind: allowed_kind(field).into(),
            },
        );
    };
    let required = |field: &str, report: &mut Report<'_>| {
        report.add(
            &format!("{path}.{field}"),
            &(),
            Problem::Required { kind: kind.into() },
        );
    };
    if f.kind != FeatureKind::Boolean
        && let Some(enabled) = f.enabled
    {
        not_for("enabled", report, json(&enabled));
    }
    if f.kind != FeatureKind::Configuration {
        if let Some(value) = &f.value {
            not_for("value", report, json(value));
        }
        if !f.choices.is_empty() {
            not_for("choices", report, json(&f.choices));
        }
    }
    if f.kind != FeatureKind::Metered {
        if let Some(meter) = &f.meter {
            not_for("meter", report, json(meter));
        }
        if let Some(limit) = &f.limit {
            not_for("limit", report, json(limit));
        }
    }
    match f.kind {
        FeatureKind::Boolean => {}
        FeatureKind::Configuration => {
            for (i, choice) in f.choices.iter().enumerate() {
                report.id(&format!("{path}.choices[{i}]"), choice);
            }
            report.unique(&format!("{path}.choices"), &f.choices);
            match &f.value {
                None => required("value", report),
                Some(value) => check_value(&format!("{path}.value"), value, &f.choices, report),
            }
        }
        FeatureKind::Metered => {
            match &f.meter {
                None => required("meter", report),
                Some(meter) => report.id(&format!("{path}.meter"), meter),
            }
            match &f.limit {
                None => required("limit", report),
                Some(limit) => report.limit(&format!("{path}.limit"), limit),
            }
        }
    }
}

/// Checks a configuration value against the feature's choices (shared with Entitlements).
pub(super) fn check_value(
    path: &str,
    value: &ConfigurationValue,
    choices: &[String],
    report: &mut Report<'_>,
) {
    match (value.number, &value.choice) {
        (Some(_), None) if choices.is_empty() => {}
        (Some(n), None) => report.add(
            &format!("{path}.number"),
            &n,
            Problem::UnknownChoice {
                choices: choices.to_vec(),
            },
        ),
        (None, Some(choice)) if choices.contains(choice) => {}
        (None, Some(choice)) => report.add(
            &format!("{path}.choice"),
            choice,
            Problem::UnknownChoice {
                choices: choices.to_vec(),
            },
        ),
        _ => report.add(
            path,
            value,
            Problem::ExactlyOneOf {
                fields: "number, choice".into(),
            },
        ),
    }
}

fn check_meters(features: &[Feature], report: &mut Report<'_>) {
    for (i, f) in features.iter().enumerate() {
        let Some(meter) = f.meter.as_ref().filter(|_| f.kind == FeatureKind::Metered) else {
            continue;
        };
        let earlier = features[..i]
            .iter()
            .find(|o| o.kind == FeatureKind::Metered && o.meter.as_ref() == Some(meter));
        if let Some(other) = earlier {
            report.add(
                &format!("spec.features[{i}].meter"),
                meter,
                Problem::MeterUsedTwice {
                    other: other.id.clone(),
                },
            );
        }
    }
}

fn allowed_kind(field: &str) -> &'static str {
    match field {
        "enabled" => "boolean",
        "value" | "choices" => "configuration",
        _ => "metered",
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}
