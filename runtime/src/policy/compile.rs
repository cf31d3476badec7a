//! From CRD objects to the indexed `Policy`.

use std::collections::HashMap;

use tollgate_crds as crds;

use super::{
    CapLevel, CapLimitDef, CapRule, EntitlementGrant, FeatureDef, FeatureKind, FeatureValue,
    LimitDef, PlanIndex, Policy, RateLine,
};
use crate::ledger::{Category, IncludedGrant, OveragePolicy, Price};
use crate::period::Period;

/// Why a catalog did not compile: every violation, each naming object, field and value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} problem(s) in the catalog: {}", .0.len(), .0.join("; "))]
pub struct CompileError(pub Vec<String>);

/// Validates `catalog` with the operator's rules and compiles it.
pub fn compile(catalog: &crds::Catalog) -> Result<Policy, CompileError> {
    let violations = crds::validate_catalog(catalog);
    if !violations.is_empty() {
        return Err(CompileError(
            violations.iter().map(ToString::to_string).collect(),
        ));
    }
    let mut policy = Policy {
        version: crds::content_version(catalog).as_str().to_string(),
        objects: catalog.len(),
        ..Policy::default()
    };
    for plan in &catalog.plans {
        let name = plan.metadata.name.clone().unwrap_or_default();
        let index = compile_plan(&name, &plan.spec);
        for (id, def) in &index.features {
            policy.features.insert(id.clone(), def.kind);
        }
        policy.plans.insert(name, index);
    }
    for entitlement in &catalog.entitlements {
        let name = entitlement.metadata.name.clone().unwrap_or_default();
        let spec = &entitlement.spec;
        let window = spec.window.as_ref().map_or((None, None), |w| {
            (w.start.as_ref().map(time_ms), w.end.as_ref().map(time_ms))
        });
        for grant in &spec.features {
            let kind = if grant.limit.is_some() {
                FeatureKind::Metered
            } else if grant.value.is_some() {
                FeatureKind::Configuration
            } else {
                FeatureKind::Boolean
            };
            policy.features.entry(grant.feature.clone()).or_insert(kind);
            let compiled = EntitlementGrant {
                name: name.clone(),
                window,
                feature: grant.feature.clone(),
                enabled: grant.enabled,
                value: grant.value.as_ref().map(value),
                limit: grant.limit.as_ref().map(limit),
            };
            for plan in &spec.target.plans {
                policy
                    .plan_grants
                    .entry(plan.clone())
                    .or_default()
                    .push(compiled.clone());
            }
            for customer in &spec.target.customers {
                policy
                    .customer_grants
                    .entry(customer.clone())
                    .or_default()
                    .push(compiled.clone());
            }
        }
    }
    for cap in &catalog.budget_caps {
        let spec = &cap.spec;
        policy.caps.push(CapRule {
            name: cap.metadata.name.clone().unwrap_or_default(),
            level: match spec.scope.level {
                crds::SubjectLevel::Customer => CapLevel::Customer,
                crds::SubjectLevel::Team => CapLevel::Team,
                crds::SubjectLevel::User => CapLevel::User,
                crds::SubjectLevel::Agent => CapLevel::Agent,
            },
            customers: spec.scope.customers.clone(),
            subjects: spec.scope.subjects.clone(),
            dimension: spec
                .scope
                .dimension
                .as_ref()
                .map(|d| (d.name.clone(), d.value.clone())),
            limit: match (&spec.limit.micro_credits, &spec.limit.usage) {
                (Some(micro), _) => CapLimitDef::MicroCredits(*micro),
                (None, Some(usage)) => CapLimitDef::Units {
                    feature: usage.feature.clone(),
                    units: usage.units,
                },
                // Validation requires exactly one of the two.
                (None, None) => CapLimitDef::MicroCredits(0),
            },
            period: period(spec.period),
            enforce: spec.action == crds::CapAction::Deny,
        });
    }
    // Customer level first, then team, user, agent: the order Reserve checks them in.
    policy
        .caps
        .sort_by(|a, b| (a.level, &a.name).cmp(&(b.level, &b.name)));
    Ok(policy)
}

fn compile_plan(name: &str, spec: &crds::PlanSpec) -> PlanIndex {
    let mut features = HashMap::new();
    for f in &spec.features {
        let kind = match f.kind {
            crds::FeatureKind::Boolean => FeatureKind::Boolean,
            crds::FeatureKind::Configuration => FeatureKind::Configuration,
            crds::FeatureKind::Metered => FeatureKind::Metered,
        };
        features.insert(
            f.id.clone(),
            FeatureDef {
                kind,
                enabled: f.enabled.unwrap_or(true),
                value: f.value.as_ref().map(value),
                meter: f.meter.clone(),
                limit: f.limit.as_ref().map(limit),
                choices: f.choices.clone(),
                fail_open: f.fail_mode == crds::FailMode::Open,
            },
        );
    }
    let mut rates: HashMap<String, Vec<RateLine>> = HashMap::new();
    for rate in &spec.rate_card {
        rates
            .entry(rate.feature.clone())
            .or_default()
            .push(RateLine {
                dimension: rate
                    .dimension
                    .as_ref()
                    .map(|d| (d.name.clone(), d.value.clone())),
                price: Price {
                    micro_credits: rate.micro_credits,
                    per_units: rate.per_units.max(1),
                },
            });
    }
    for lines in rates.values_mut() {
        // Lines with a dimension are tried before the feature's default line.
        lines.sort_by_key(|l| l.dimension.is_none());
    }
    let included = spec
        .included_grants
        .iter()
        .map(|g| IncludedGrant {
            id: g.id.clone(),
            amount: g.amount_micro_credits,
            category: match g.category {
                crds::GrantCategory::Paid => Category::Paid,
                crds::GrantCategory::Promotional => Category::Promotional,
            },
            priority: g.priority,
            period: period(g.period),
            calendar: false,
            expires_after_ms: g.expires_after_seconds.map(|s| s.saturating_mul(1000)),
        })
        .collect();
    let overage = match spec.overage.action {
        crds::OverageAction::Deny => OveragePolicy::Deny,
        crds::OverageAction::AllowOverdraft => OveragePolicy::AllowOverdraft {
            floor: spec.overage.overdraft_floor_micro_credits.unwrap_or(0),
        },
    };
    PlanIndex {
        name: name.to_string(),
        closed: spec.closed_to_new_subscriptions,
        features,
        rates,
        included,
        overage,
    }
}

fn limit(l: &crds::Limit) -> LimitDef {
    LimitDef {
        amount: if l.unlimited { None } else { l.amount },
        hard: l.enforcement == crds::Enforcement::Hard,
        period: period(l.reset),
        calendar: l.anchor == crds::ResetAnchor::Calendar,
    }
}

fn value(v: &crds::ConfigurationValue) -> FeatureValue {
    match (&v.number, &v.choice) {
        (Some(n), _) => FeatureValue::Number(*n),
        (None, Some(c)) => FeatureValue::Choice(c.clone()),
        (None, None) => FeatureValue::Number(0),
    }
}

pub(crate) fn period(p: crds::ResetPeriod) -> Period {
    match p {
        crds::ResetPeriod::Hour => Period::Hour,
        crds::ResetPeriod::Day => Period::Day,
        crds::ResetPeriod::Week => Period::Week,
        crds::ResetPeriod::Month => Period::Month,
        crds::ResetPeriod::Year => Period::Year,
        crds::ResetPeriod::Never => Period::Never,
    }
}

fn time_ms(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> u64 {
    u64::try_from(t.0.as_millisecond()).unwrap_or(0)
}
