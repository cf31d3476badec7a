//! Checks of one BudgetCap against the catalog.

use super::features::FeatureIndex;
use super::{Problem, Report};
use crate::budget_cap::{BudgetCap, SubjectLevel};
use crate::plan::FeatureKind;

pub(super) fn check(cap: &BudgetCap, index: &FeatureIndex, report: &mut Report<'_>) {
    let spec = &cap.spec;
    let scope = &spec.scope;
    report.unique("spec.scope.customers", &scope.customers);
    for (i, customer) in scope.customers.iter().enumerate() {
        report.external_id(&format!("spec.scope.customers[{i}]"), customer);
    }
    if scope.level == SubjectLevel::Customer && !scope.subjects.is_empty() {
        report.add(
            "spec.scope.subjects",
            &scope.subjects,
            Problem::NotForThisKind {
                kind: "team, user or agent".into(),
            },
        );
    }
    report.unique("spec.scope.subjects", &scope.subjects);
    for (i, subject) in scope.subjects.iter().enumerate() {
        report.external_id(&format!("spec.scope.subjects[{i}]"), subject);
    }
    if let Some(d) = &scope.dimension {
        report.id("spec.scope.dimension.name", &d.name);
        report.external_id("spec.scope.dimension.value", &d.value);
    }

    let limit = &spec.limit;
    match (limit.micro_credits, &limit.usage) {
        (Some(0), None) => report.add("spec.limit.microCredits", &0, Problem::NotPositive),
        (Some(_), None) => {}
        (None, Some(usage)) => {
            index.expect(
                report,
                "spec.limit.usage.feature",
                &usage.feature,
                Some(FeatureKind::Metered),
            );
            if usage.units == 0 {
                report.add("spec.limit.usage.units", &0, Problem::NotPositive);
            }
        }
        _ => report.add(
            "spec.limit",
            limit,
            Problem::ExactlyOneOf {
                fields: "microCredits, usage".into(),
            },
        ),
    }
}
