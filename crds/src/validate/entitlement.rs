//! Checks of one Entitlement against the catalog.

use super::features::FeatureIndex;
use super::plan::check_value;
use super::{Problem, Report};
use crate::catalog::Catalog;
use crate::entitlement::Entitlement;
use crate::plan::FeatureKind;

pub(super) fn check(
    e: &Entitlement,
    catalog: &Catalog,
    index: &FeatureIndex,
    report: &mut Report<'_>,
) {
    let spec = &e.spec;
    let target = &spec.target;
    if target.plans.is_empty() == target.customers.is_empty() {
        report.add(
            "spec.target",
            target,
            Problem::ExactlyOneOf {
                fields: "plans, customers".into(),
            },
        );
    }
    report.unique("spec.target.plans", &target.plans);
    for (i, plan) in target.plans.iter().enumerate() {
        if catalog.plan(plan).is_none() {
            report.add(
                &format!("spec.target.plans[{i}]"),
                plan,
                Problem::UnknownPlan { plan: plan.clone() },
            );
        }
    }
    report.unique("spec.target.customers", &target.customers);
    for (i, customer) in target.customers.iter().enumerate() {
        report.external_id(&format!("spec.target.customers[{i}]"), customer);
    }

    if let Some(window) = &spec.window
        && let (Some(start), Some(end)) = (&window.start, &window.end)
        && end.0 <= start.0
    {
        report.add("spec.window.end", end, Problem::WindowEndsBeforeStart);
    }

    if spec.features.is_empty() {
        report.add("spec.features", &spec.features, Problem::Empty);
    }
    let ids: Vec<String> = spec.features.iter().map(|g| g.feature.clone()).collect();
    report.unique("spec.features[].feature", &ids);
    for (i, grant) in spec.features.iter().enumerate() {
        let path = format!("spec.features[{i}]");
        let set = [
            grant.enabled.is_some(),
            grant.value.is_some(),
            grant.limit.is_some(),
        ];
        if set.iter().filter(|x| **x).count() != 1 {
            report.add(
                &path,
                grant,
                Problem::ExactlyOneOf {
                    fields: "enabled, value, limit".into(),
                },
            );
            continue;
        }
        let expected = if grant.enabled.is_some() {
            FeatureKind::Boolean
        } else if grant.value.is_some() {
            FeatureKind::Configuration
        } else {
            FeatureKind::Metered
        };
        let feature_path = format!("{path}.feature");
        let Some(declared) = index.expect(report, &feature_path, &grant.feature, Some(expected))
        else {
            continue;
        };
        if grant.enabled == Some(false) {
            report.add(&format!("{path}.enabled"), &false, Problem::GrantsNothing);
        }
        if let Some(value) = &grant.value {
            check_value(&format!("{path}.value"), value, &declared.choices, report);
        }
        if let Some(limit) = &grant.limit {
            report.limit(&format!("{path}.limit"), limit);
            check_period(&path, &grant.feature, limit, catalog, &target.plans, report);
        }
    }
}

/// A limit granted to plans resets as those plans' own limit of the feature does: the most
/// generous of a monthly 100,000 and a yearly 100,001 is not the larger number.
fn check_period(
    path: &str,
    feature: &str,
    limit: &crate::common::Limit,
    catalog: &Catalog,
    plans: &[String],
    report: &mut Report<'_>,
) {
    let period =
        |l: &crate::common::Limit| format!("{:?} ({:?} anchor)", l.reset, l.anchor).to_lowercase();
    for plan in plans {
        let declared = catalog
            .plan(plan)
            .and_then(|p| p.spec.features.iter().find(|f| f.id == feature))
            .and_then(|f| f.limit.as_ref());
        let Some(declared) = declared else { continue };
        if declared.unlimited || limit.unlimited {
            continue; // unlimited wins whatever the period
        }
        if declared.reset != limit.reset || declared.anchor != limit.anchor {
            report.add(
                &format!("{path}.limit.reset"),
                &limit.reset,
                Problem::LimitPeriodDiffers {
                    plan: plan.clone(),
                    reset: period(limit),
                    plan_reset: period(declared),
                },
            );
        }
    }
}
