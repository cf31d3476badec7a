//! Semantic validation of a whole catalog: the checks a schema cannot make (references between
//! objects, duplicates, kinds that must agree). Pure; the operator runs it before a bundle
//! reaches the pods and the runtime runs it on `--catalog` files, so both accept and refuse the
//! same catalogs.

mod budget_cap;
mod entitlement;
mod features;
mod plan;

use serde::Serialize;

use crate::catalog::{Catalog, ObjectKind, ObjectRef, name_of};
use crate::common::{Limit, MAX_ID_LEN};

pub use features::{DeclaredFeature, FeatureIndex};

/// One thing wrong with a catalog: which object, which field, its value, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {path} = {value}: {problem}")]
pub struct Violation {
    pub object: ObjectRef,
    /// Path of the field from the object's root, for example `spec.features[2].limit.amount`.
    pub path: String,
    /// The offending value, as compact JSON.
    pub value: String,
    pub problem: Problem,
}

/// What is wrong. Each variant has a stable [`Problem::code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the object has no name")]
    MissingName,
    #[error("another {0} has the same name")]
    DuplicateName(ObjectKind),
    #[error(
        "not a Kubernetes object name (lowercase letters, digits, '-' and '.', starting and \
         ending with a letter or digit, at most 253): `kubectl apply` would refuse it"
    )]
    InvalidName,
    #[error(
        "not a valid id: 1 to 63 lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
    )]
    InvalidId,
    #[error("must not be empty")]
    Empty,
    #[error(
        "starts or ends with white space: ids are compared byte for byte, so \" acme\" would \
         never match \"acme\""
    )]
    SurroundingSpace,
    #[error("contains a control character (a newline, a tab, ...)")]
    ControlCharacter,
    #[error("longer than {max} characters")]
    TooLong { max: usize },
    #[error("duplicate: already at {first}")]
    Duplicate { first: String },
    #[error("must be greater than 0")]
    NotPositive,
    #[error("no Plan declares feature {feature:?}")]
    UnknownFeature { feature: String },
    #[error("no Plan named {plan:?}")]
    UnknownPlan { plan: String },
    #[error("feature {feature:?} is {actual:?}, this needs a {expected:?} feature")]
    WrongFeatureKind {
        feature: String,
        expected: String,
        actual: String,
    },
    #[error("only for {kind} features")]
    NotForThisKind { kind: String },
    #[error("required for {kind} features")]
    Required { kind: String },
    #[error("set exactly one of {fields}")]
    ExactlyOneOf { fields: String },
    #[error(
        "Plan/{other_plan} declares feature {feature:?} differently ({what}); a feature means one thing across plans"
    )]
    InconsistentFeature {
        feature: String,
        other_plan: String,
        what: String,
    },
    #[error("not one of the feature's choices {choices:?}")]
    UnknownChoice { choices: Vec<String> },
    #[error("feature {other:?} of this plan uses the same meter")]
    MeterUsedTwice { other: String },
    #[error("the window must end after it starts")]
    WindowEndsBeforeStart,
    #[error("grants nothing: most generous wins, so false has no effect; leave the feature out")]
    GrantsNothing,
    #[error(
        "resets {reset}, but plan {plan} resets this feature {plan_reset}: limits of different \
         periods cannot be compared for the most generous, so give the plan's reset and anchor"
    )]
    LimitPeriodDiffers {
        plan: String,
        reset: String,
        plan_reset: String,
    },
    #[error(
        "prices {feature} by dimension {name}, but {first} prices it by {first_name}: usage \
         with both would match two lines, so a feature's lines use one dimension"
    )]
    RateDimensionsDiffer {
        feature: String,
        name: String,
        first: String,
        first_name: String,
    },
}

impl Problem {
    /// A stable code for events, metrics labels and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::MissingName => "missing_name",
            Problem::DuplicateName(_) => "duplicate_name",
            Problem::InvalidName => "invalid_name",
            Problem::InvalidId => "invalid_id",
            Problem::Empty => "empty",
            Problem::SurroundingSpace => "surrounding_space",
            Problem::ControlCharacter => "control_character",
            Problem::TooLong { .. } => "too_long",
            Problem::Duplicate { .. } => "duplicate",
            Problem::NotPositive => "not_positive",
            Problem::UnknownFeature { .. } => "unknown_feature",
            Problem::UnknownPlan { .. } => "unknown_plan",
            Problem::WrongFeatureKind { .. } => "wrong_feature_kind",
            Problem::NotForThisKind { .. } => "not_for_this_kind",
            Problem::Required { .. } => "required",
            Problem::ExactlyOneOf { .. } => "exactly_one_of",
            Problem::InconsistentFeature { .. } => "inconsistent_feature",
            Problem::UnknownChoice { .. } => "unknown_choice",
            Problem::MeterUsedTwice { .. } => "meter_used_twice",
            Problem::WindowEndsBeforeStart => "window_ends_before_start",
            Problem::GrantsNothing => "grants_nothing",
            Problem::LimitPeriodDiffers { .. } => "limit_period_differs",
            Problem::RateDimensionsDiffer { .. } => "rate_dimensions_differ",
        }
    }
}

/// Every semantic error of the catalog, in a deterministic order (objects sorted by kind and
/// name, then fields in document order). Empty means valid.
pub fn validate_catalog(catalog: &Catalog) -> Vec<Violation> {
    let sorted = catalog.sorted();
    let mut out = Vec::new();
    check_names(&sorted, &mut out);
    let index = FeatureIndex::build(&sorted, &mut out);
    for p in &sorted.plans {
        plan::check(
            p,
            &mut Report::new(ObjectKind::Plan, name_of(&p.metadata), &mut out),
        );
    }
    for e in &sorted.entitlements {
        let mut report = Report::new(ObjectKind::Entitlement, name_of(&e.metadata), &mut out);
        entitlement::check(e, &sorted, &index, &mut report);
    }
    for c in &sorted.budget_caps {
        let mut report = Report::new(ObjectKind::BudgetCap, name_of(&c.metadata), &mut out);
        budget_cap::check(c, &index, &mut report);
    }
    out
}

fn check_names(catalog: &Catalog, out: &mut Vec<Violation>) {
    let refs = catalog.object_refs();
    for (i, r) in refs.iter().enumerate() {
        let mut report = Report::new(r.kind, &r.name, out);
        if r.name.is_empty() {
            report.add("metadata.name", &r.name, Problem::MissingName);
        } else if !is_object_name(&r.name) {
            report.add("metadata.name", &r.name, Problem::InvalidName);
        } else if refs[..i].contains(r) {
            report.add("metadata.name", &r.name, Problem::DuplicateName(r.kind));
        }
    }
}

/// A DNS-1123 subdomain, what the Kubernetes API accepts as these objects' names: the
/// same catalog must load from a directory and through `kubectl apply`.
fn is_object_name(name: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 253
        && bytes.iter().all(|&b| alnum(b) || b == b'-' || b == b'.')
        && bytes.first().copied().is_some_and(alnum)
        && bytes.last().copied().is_some_and(alnum)
}

/// Collects violations of one object.
pub(crate) struct Report<'a> {
    object: ObjectRef,
    out: &'a mut Vec<Violation>,
}

impl<'a> Report<'a> {
    fn new(kind: ObjectKind, name: &str, out: &'a mut Vec<Violation>) -> Self {
        Self {
            object: ObjectRef::new(kind, name),
            out,
        }
    }

    pub(crate) fn add<V: Serialize + ?Sized>(&mut self, path: &str, value: &V, problem: Problem) {
        self.out.push(Violation {
            object: self.object.clone(),
            path: path.to_string(),
            value: show(value),
            problem,
        });
    }

    /// Checks an id (feature, grant, meter, choice, dimension).
    pub(crate) fn id(&mut self, path: &str, id: &str) {
        if !is_valid_id(id) {
            self.add(path, id, Problem::InvalidId);
        }
    }

    /// Checks an external id (customer, team, user, agent, dimension value).
    pub(crate) fn external_id(&mut self, path: &str, id: &str) {
        if let Err(problem) = check_external_id(id) {
            self.add(path, id, problem);
        }
    }

    /// Reports every repeated string of a list.
    pub(crate) fn unique(&mut self, path: &str, items: &[String]) {
        for (i, item) in items.iter().enumerate() {
            if let Some(first) = items[..i].iter().position(|x| x == item) {
                let first = format!("{path}[{first}]");
                self.add(&format!("{path}[{i}]"), item, Problem::Duplicate { first });
            }
        }
    }

    /// Checks a usage limit.
    pub(crate) fn limit(&mut self, path: &str, limit: &Limit) {
        match (limit.amount, limit.unlimited) {
            (Some(0), false) => self.add(&format!("{path}.amount"), &0, Problem::NotPositive),
            (Some(_), false) | (None, true) => {}
            _ => self.add(
                path,
                limit,
                Problem::ExactlyOneOf {
                    fields: "amount, unlimited".into(),
                },
            ),
        }
    }
}

/// Longest customer, team, user or agent id, or dimension value, accepted in a catalog (ids
/// come from the product's own systems, so they are not held to the feature-id rules). The
/// API takes ids of at most 128 bytes (the runtime's `MAX_ID_BYTES`): a longer one in a
/// catalog could never match a request.
pub const MAX_EXTERNAL_ID_LEN: usize = 128;

/// The part of the external-id rule that a CRD schema can state (`pattern`, so that
/// `kubectl apply` refuses such an id at once): not empty, no control character (C0, DEL or
/// C1) anywhere, no space at either end. The API server's Go regexp and ECMA-262 read it
/// alike. [`check_external_id`], which the operator and the runtime apply, also refuses
/// white space other than ASCII at either end, and ids over 128 bytes (a schema's
/// `maxLength` counts characters).
pub const EXTERNAL_ID_PATTERN: &str =
    r"^[^\x00-\x20\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\x9f])?$";

/// The rule for an external id (customer, team, user, agent, dimension value), in a catalog
/// and in an API request alike: not empty nor only white space, at most
/// [`MAX_EXTERNAL_ID_LEN`] bytes, no white space at either end, no control characters.
/// Anything else goes: ids come from the product's own systems.
pub fn check_external_id(id: &str) -> Result<(), Problem> {
    if id.trim().is_empty() {
        Err(Problem::Empty)
    } else if id.len() > MAX_EXTERNAL_ID_LEN {
        Err(Problem::TooLong {
            max: MAX_EXTERNAL_ID_LEN,
        })
    } else if id.trim() != id {
        Err(Problem::SurroundingSpace)
    } else if id.chars().any(char::is_control) {
        Err(Problem::ControlCharacter)
    } else {
        Ok(())
    }
}

fn show<V: Serialize + ?Sized>(value: &V) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "<unprintable>".to_string())
}

/// Whether `id` is a valid feature, grant, meter, choice or dimension id.
pub fn is_valid_id(id: &str) -> bool {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.chars().all(ok_char)
        && alnum(id.chars().next())
        && alnum(id.chars().last())
}

#[cfg(test)]
mod tests;
