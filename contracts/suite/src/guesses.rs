//! The `[design]` facts a `[doc]` case is not held to against a target, and the committed
//! schemas with those facts' constraints taken out.
//!
//! A `[doc]` case often passes through a step whose details are linkbox's guesses — a Leaf
//! create answered 200, an M2M `linkId` of the form `link_<slug>_<12 hex>`, a Leaf error in
//! JHipster's problem format — on its way to the documented fact it checks. Against a real
//! deployment such a case is held only to what the docs say: a check of a guess it does not
//! name keeps its documented part (a create answered with a 2xx, an error with its status)
//! and the rest passes, and the answer that contradicts the guess is noted once per run, on
//! stderr and in the report, as a `[design]` difference — never as the vendor differing from
//! its docs. Each guess relaxed here has its own `[design]` case that runs against a target
//! (a unit test below keeps it so), and checks it whenever `[design]` cases run (`--only
//! all`). In-process, and in `[design]` cases anywhere, every check binds as before.
//!
//! [`INCIDENTAL`] lists the guesses the shared checks relax ([`crate::client::Ctx::binds`]);
//! [`SCHEMA`] the constraints of the committed schemas that state one of them, and
//! [`relax`] takes them out of a schema.

use serde_json::Value;

/// Every `[design]` fact a shared check of the suite holds a `[doc]` case to only in-process:
/// the checks of [`crate::client::Reply`] (`design_status`, `problem`, `violation`,
/// `m2m_error`, the schema of every answer) and of the case helpers.
pub const INCIDENTAL: &[&str] = &[
    // A Leaf magic-link create is answered 200 (any 2xx otherwise).
    "LEAF-CREATE-STATUS",
    // A Leaf error is `application/problem+json`, a problem with `status` and every member.
    "LEAF-PROBLEM-CONTENT-TYPE",
    "LEAF-PROBLEM-SHAPE",
    // A Leaf body violation has the constraint-violation `type` and names the field.
    "LEAF-PROBLEM-CONSTRAINT-TYPE",
    "LEAF-PROBLEM-FIELD-ERRORS",
    // The `backgroundColor` format of the magic-link schemas.
    "LEAF-SETTINGS-BACKGROUND-COLOR",
    // An M2M error envelope has no member besides `success`, `error.code` and `.message`.
    "M2M-ENVELOPE-ERROR-EXACT",
    // The id formats of the M2M schemas.
    "M2M-FORMAT-LINK-ID",
    "M2M-FORMAT-USER-ID",
    // The M2M detail's members beyond the list item's.
    "M2M-DETAIL-FIELDS",
];

/// A constraint of a committed schema that states a `[design]` fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    /// `"pattern": <this>`, wherever it appears (an id format).
    Pattern(&'static str),
    /// `"additionalProperties": false` anywhere in the schema at this path (an exact shape).
    Closed(&'static str),
    /// The whole schema at this path: a body format that is linkbox's guess throughout.
    Whole(&'static str),
    /// These members of `$defs/<def>` of the schema at `schema` are required.
    Required {
        schema: &'static str,
        def: &'static str,
        members: &'static [&'static str],
    },
}

/// The `[design]` constraints of the committed response schemas, by fact.
pub const SCHEMA: &[(&str, Constraint)] = &[
    (
        "M2M-FORMAT-LINK-ID",
        Constraint::Pattern("^link_[a-z0-9]+_[0-9a-f]{12}$"),
    ),
    (
        "M2M-FORMAT-USER-ID",
        Constraint::Pattern("^user_[a-z0-9]+_[A-Za-z0-9]{6}$"),
    ),
    (
        "LEAF-SETTINGS-BACKGROUND-COLOR",
        Constraint::Pattern("^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"),
    ),
    (
        "M2M-ENVELOPE-ERROR-EXACT",
        Constraint::Closed("m2m/ErrorEnvelope.json"),
    ),
    (
        "M2M-DETAIL-FIELDS",
        Constraint::Required {
            schema: "m2m/LinkDetailResponse.json",
            def: "LinkDetail",
            members: &["token", "flow"],
        },
    ),
    ("LEAF-PROBLEM-SHAPE", Constraint::Whole("leaf/Problem.json")),
];

/// The schema at `path` without the constraints of the `unheld` facts.
pub fn relax(path: &str, schema: &Value, unheld: &[&str]) -> Value {
    let mut relaxed = schema.clone();
    for (fact, constraint) in SCHEMA {
        if !unheld.contains(fact) {
            continue;
        }
        match *constraint {
            Constraint::Pattern(pattern) => walk(&mut relaxed, &mut |object| {
                if object.get("pattern").and_then(Value::as_str) == Some(pattern) {
                    object.remove("pattern");
                }
            }),
            Constraint::Closed(at) if at == path => walk(&mut relaxed, &mut |object| {
                if object.get("additionalProperties") == Some(&Value::Bool(false)) {
                    object.remove("additionalProperties");
                }
            }),
            Constraint::Whole(at) if at == path => relaxed = Value::Object(Default::default()),
            Constraint::Required {
                schema,
                def,
                members,
            } if schema == path => {
                let required = relaxed
                    .pointer_mut(&format!("/$defs/{def}/required"))
                    .and_then(Value::as_array_mut);
                if let Some(required) = required {
                    required.retain(|member| {
                        member
                            .as_str()
                            .is_none_or(|member| !members.contains(&member))
                    });
                }
            }
            Constraint::Closed(_) | Constraint::Whole(_) | Constraint::Required { .. } => {}
        }
    }
    relaxed
}

/// The facts of [`SCHEMA`] among `facts` whose constraints are in the schema at `path`.
pub fn in_schema(path: &str, schema: &Value, facts: &[&'static str]) -> Vec<&'static str> {
    facts
        .iter()
        .copied()
        .filter(|fact| relax(path, schema, &[fact]) != *schema)
        .collect()
}

/// Calls `visit` on every object in `value`, depth first.
fn walk(value: &mut Value, visit: &mut impl FnMut(&mut serde_json::Map<String, Value>)) {
    match value {
        Value::Object(object) => {
            visit(object);
            for child in object.values_mut() {
                walk(child, visit);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, visit);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Source;
    use serde_json::json;

    /// Patterns of the committed schemas that state no fact a target run meets: they are in
    /// answers only an in-process linkbox gives, where every check binds.
    const LOCAL_PATTERNS: &[(&str, &str)] = &[
        (
            "^dr_[a-z0-9]+_[0-9a-f]{12}$",
            "a data request exists only through the control API",
        ),
        (
            "^whsec_[A-Za-z0-9]{24}$",
            "regenerating the webhook secret is local-only",
        ),
    ];

    fn schemas() -> Vec<(String, Value)> {
        linkbox_contracts::schemas::all()
            .into_iter()
            .map(|(path, schema)| (path, schema.as_value().clone()))
            .collect()
    }

    /// Relaxing a guess in the `[doc]` cases is safe only because its own case checks it: a
    /// `[design]` case that runs against a target (not `local`) names every fact relaxed here,
    /// so `--only all` is as strict as before.
    #[test]
    fn every_relaxed_guess_is_a_design_fact_with_its_own_case_against_a_target() {
        let cases = crate::cases();
        for fact in INCIDENTAL {
            let found = crate::facts::find(fact).unwrap_or_else(|| panic!("{fact}: no such fact"));
            assert_eq!(
                found.source,
                Source::Design,
                "{fact} is not a [design] fact"
            );
            assert!(
                !found.local,
                "{fact} is (local): no target case can check it"
            );
            assert!(
                cases.iter().any(|case| case.source == Source::Design
                    && !case.local
                    && case.facts.contains(fact)),
                "{fact}: no [design] case that runs against a target names it"
            );
        }
        for (fact, _) in SCHEMA {
            assert!(INCIDENTAL.contains(fact), "{fact} is not in INCIDENTAL");
        }
    }

    /// Each constraint of [`SCHEMA`] is in the committed schemas (a renamed pattern or
    /// definition would relax nothing), and every `pattern` of a committed answer's schema
    /// is one of them or in an answer only an in-process linkbox gives: a new id format is
    /// classified here before a `[doc]` case can trip on it.
    #[test]
    fn the_schema_constraints_are_the_committed_ones_and_every_pattern_is_classified() {
        let schemas = schemas();
        for (fact, constraint) in SCHEMA {
            assert!(
                schemas
                    .iter()
                    .any(|(path, schema)| relax(path, schema, &[fact]) != *schema),
                "{fact}: {constraint:?} relaxes no committed schema"
            );
        }
        let mut patterns = Vec::new();
        // A request's schema says what a client sends (what linkbox checks by form); no
        // answer is held to it, so its patterns trip no case.
        let answers = schemas
            .iter()
            .filter(|(path, _)| !path.ends_with("Request.json"));
        for (_, schema) in answers {
            let mut schema = schema.clone();
            walk(&mut schema, &mut |object| {
                if let Some(pattern) = object.get("pattern").and_then(Value::as_str) {
                    patterns.push(pattern.to_owned());
                }
            });
        }
        for pattern in patterns {
            assert!(
                SCHEMA
                    .iter()
                    .any(|(_, constraint)| matches!(constraint, Constraint::Pattern(known) if *known == pattern))
                    || LOCAL_PATTERNS.iter().any(|(local, _)| *local == pattern),
                "the pattern {pattern} of a committed schema is neither a [design] constraint \
                 of SCHEMA nor local-only"
            );
        }
    }

    #[test]
    fn relaxing_takes_out_only_the_constraints_of_the_unheld_facts() {
        let schema = json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "linkId": {"type": "string", "pattern": "^link_[a-z0-9]+_[0-9a-f]{12}$"},
                "userId": {"type": "string", "pattern": "^user_[a-z0-9]+_[A-Za-z0-9]{6}$"}
            },
            "$defs": {"LinkDetail": {"required": ["linkId", "token", "flow"]}}
        });
        let relaxed = relax("m2m/X.json", &schema, &["M2M-FORMAT-LINK-ID"]);
        assert_eq!(relaxed.pointer("/properties/linkId/pattern"), None);
        assert!(relaxed.pointer("/properties/userId/pattern").is_some());
        assert_eq!(
            relax(
                "m2m/ErrorEnvelope.json",
                &schema,
                &["M2M-ENVELOPE-ERROR-EXACT"]
            )
            .get("additionalProperties"),
            None
        );
        assert_eq!(
            relax("m2m/X.json", &schema, &["M2M-ENVELOPE-ERROR-EXACT"]),
            schema,
            "only the error envelope is opened"
        );
        assert_eq!(
            relax(
                "m2m/LinkDetailResponse.json",
                &schema,
                &["M2M-DETAIL-FIELDS"]
            )
            .pointer("/$defs/LinkDetail/required"),
            Some(&json!(["linkId"]))
        );
        assert_eq!(
            relax("leaf/Problem.json", &schema, &["LEAF-PROBLEM-SHAPE"]),
            json!({})
        );
        assert_eq!(
            in_schema("m2m/X.json", &schema, INCIDENTAL),
            ["M2M-FORMAT-LINK-ID", "M2M-FORMAT-USER-ID"]
        );
    }
}
