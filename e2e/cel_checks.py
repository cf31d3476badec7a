"""The CRDs' CEL validation rules (x-kubernetes-validations), evaluated offline.

No API server runs here, so this evaluates every rule of the generated CRDs with cel-python,
the way the API server applies them: each rule at the schema node that carries it, with
`self` bound to the value there (every item of a list, every value of a map), and a
transition rule (one that reads `oldSelf`) only on an update.

1. Every custom resource under examples/ passes every rule.
2. Each case below breaks exactly one mistake a rule exists to catch, and is refused with
   that rule's message; its corrected twin passes. A rule that no case breaks fails the run,
   so a new rule comes with its case.

Usage: cel_checks.py REPO_ROOT
"""

import copy
import glob
import os
import sys

import celpy
import yaml


def load_crds(root):
    crds = {}
    for path in glob.glob(os.path.join(root, "crds", "*.yaml")):
        with open(path) as f:
            crd = yaml.safe_load(f)
        version = crd["spec"]["versions"][0]
        crds[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return crds


ENV = celpy.Environment()
PROGRAMS = {}


def program(rule):
    if rule not in PROGRAMS:
        PROGRAMS[rule] = ENV.program(ENV.compile(rule))
    return PROGRAMS[rule]


def rules_of(schema, path="$"):
    """Every (path, rule) in a schema."""
    for v in schema.get("x-kubernetes-validations", []):
        yield path, v
    for name, sub in schema.get("properties", {}).items():
        yield from rules_of(sub, f"{path}.{name}")
    if "items" in schema:
        yield from rules_of(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from rules_of(schema["additionalProperties"], f"{path}{{*}}")


def violations(schema, value, old=None, path="$"):
    """(path, rule, message) of every rule that `value` breaks."""
    found = []
    if value is None:
        return found
    for v in schema.get("x-kubernetes-validations", []):
        rule = v["rule"]
        transition = "oldSelf" in rule
        if transition and old is None:
            continue
        bindings = {"self": celpy.json_to_cel(value)}
        if transition:
            bindings["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = program(rule).evaluate(bindings)
        except celpy.CELEvalError as error:
            result = error
        # CEL booleans are celpy BoolType values; an evaluation error counts as a refusal.
        if isinstance(result, Exception) or not isinstance(result, celpy.celtypes.BoolType) \
                or not bool(result):
            found.append((path, rule, v.get("message", rule)))
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                old_sub = old.get(name) if isinstance(old, dict) else None
                found += violations(sub, value[name], old_sub, f"{path}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                found += violations(extra, item, None, f"{path}{{{key}}}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += violations(schema["items"], item, None, f"{path}[{i}]")
    return found


def example_objects(root):
    for path in sorted(glob.glob(os.path.join(root, "examples", "**", "*.yaml"), recursive=True)):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("apiVersion", "").startswith("tollgate.dev/"):
                    yield path, doc


def edit(base, change):
    obj = copy.deepcopy(base)
    change(obj)
    return obj


def cases(examples):
    """(name, kind, good object, bad object, old object or None, message the bad one gets)."""
    by_kind = {}
    for _, doc in examples:
        by_kind.setdefault(doc["kind"], doc)
    runtime = by_kind["TollgateRuntime"]
    plan = {
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Plan",
        "metadata": {"name": "p"},
        "spec": {
            "features": [
                {"id": "chat", "kind": "boolean", "enabled": True},
                {"id": "seats", "kind": "configuration", "value": {"number": 5}},
                {"id": "tokens", "kind": "metered", "meter": "llm.tokens",
                 "limit": {"amount": 1000}},
            ],
            "overage": {"action": "deny"},
        },
    }
    entitlement = {
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "Entitlement",
        "metadata": {"name": "e"},
        "spec": {
            "target": {"plans": ["p"]},
            "features": [{"id": "chat", "enabled": True}],
            "window": {"start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"},
        },
    }
    cap = {
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "BudgetCap",
        "metadata": {"name": "c"},
        "spec": {
            "scope": {"level": "agent", "subjects": ["bot"]},
            "limit": {"microCredits": 1000},
            "period": "day",
            "action": "deny",
        },
    }
    f = lambda i: lambda o: o["spec"]["features"][i]  # noqa: E731

    def set_(getter, key, value):
        return lambda o: getter(o).__setitem__(key, value)

    def del_(getter, key):
        return lambda o: getter(o).pop(key)

    spec = lambda o: o["spec"]  # noqa: E731
    embedded = edit(runtime, lambda o: o["spec"].update(
        store={"kind": "embedded", "embedded": {"size": "10Gi"}}))
    return [
        ("runtime: grpc and http on one port", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["spec"].setdefault("ports", {}).update(grpc=8080, http=8080)),
         None, "port"),
        ("runtime: dynamodb store without its settings", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["spec"].__setitem__("store", {"kind": "dynamodb"})),
         None, "dynamodb"),
        ("runtime: fewer partitions than replicas", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["spec"].update(partitions=1, replicas=2)),
         None, "partitions must be at least replicas"),
        ("runtime: partitions changed after creation", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["spec"].__setitem__("partitions", runtime["spec"]["partitions"] * 2)),
         runtime, "partitions is fixed"),
        ("runtime: store kind changed after creation", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["spec"].__setitem__("store", {"kind": "embedded"})),
         runtime, "store.kind is fixed"),
        ("runtime: embedded volume changed after creation", "TollgateRuntime", embedded,
         edit(embedded, lambda o: o["spec"]["store"]["embedded"].__setitem__("size", "20Gi")),
         embedded, "store.embedded is fixed"),
        ("runtime: a name that is not a DNS label", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["metadata"].__setitem__("name", "Tollgate.Prod")),
         None, "DNS label"),
        ("runtime: a name too long for the StatefulSet's pods", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["metadata"].__setitem__("name", "t" * 53)),
         None, "DNS label"),
        ("runtime: tls, which the runtime does not serve yet", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["spec"].__setitem__("tls", {"secretName": "t"})),
         None, "tls is not supported yet"),
        ("runtime: auth, which the runtime does not check yet", "TollgateRuntime", runtime,
         edit(runtime, lambda o: o["spec"].__setitem__("auth", {"secretName": "a"})),
         None, "auth is not supported yet"),
        ("plan: metered feature without a meter", "Plan", plan,
         edit(plan, del_(f(2), "meter")), None, "metered"),
        ("plan: boolean feature with a limit", "Plan", plan,
         edit(plan, set_(f(0), "limit", {"amount": 5})), None, "metered"),
        ("plan: limit with both an amount and unlimited", "Plan", plan,
         edit(plan, lambda o: f(2)(o)["limit"].__setitem__("unlimited", True)), None, "unlimited"),
        ("plan: configuration with a number and a choice", "Plan", plan,
         edit(plan, lambda o: f(1)(o)["value"].__setitem__("choice", "large")), None, "choice"),
        ("plan: configuration feature without a value", "Plan", plan,
         edit(plan, del_(f(1), "value")), None, "needs a value"),
        ("plan: value on a boolean feature", "Plan", plan,
         edit(plan, set_(f(0), "value", {"number": 1})), None, "only for configuration"),
        ("plan: enabled on a metered feature", "Plan", plan,
         edit(plan, set_(f(2), "enabled", True)), None, "only for boolean"),
        ("plan: overdraft floor without allowOverdraft", "Plan", plan,
         edit(plan, lambda o: o["spec"]["overage"].__setitem__("overdraftFloorMicroCredits", 5)),
         None, "overdraft"),
        ("entitlement: both plans and customers", "Entitlement", entitlement,
         edit(entitlement, lambda o: o["spec"]["target"].__setitem__("customers", ["cus_1"])),
         None, "plans"),
        ("entitlement: a feature granting two things", "Entitlement", entitlement,
         edit(entitlement, lambda o: o["spec"]["features"][0].__setitem__("limit", {"amount": 5})),
         None, "one of"),
        ("entitlement: limit with both an amount and unlimited", "Entitlement", entitlement,
         edit(entitlement, lambda o: o["spec"]["features"].append(
             {"id": "tokens", "limit": {"amount": 5, "unlimited": True}})), None, "unlimited"),
        ("entitlement: configuration with a number and a choice", "Entitlement", entitlement,
         edit(entitlement, lambda o: o["spec"]["features"].append(
             {"id": "seats", "value": {"number": 5, "choice": "large"}})), None, "choice"),
        ("entitlement: window ends before it starts", "Entitlement", entitlement,
         edit(entitlement, lambda o: o["spec"]["window"].__setitem__("end", "2025-12-01T00:00:00Z")),
         None, "end"),
        ("budget cap: limit in both credits and usage", "BudgetCap", cap,
         edit(cap, lambda o: o["spec"]["limit"].__setitem__("usage", {"meter": "llm.tokens", "amount": 5})),
         None, "microCredits"),
        ("budget cap: customer level with subjects", "BudgetCap", cap,
         edit(cap, lambda o: o["spec"]["scope"].__setitem__("level", "customer")),
         None, "subjects"),
    ]


def main(root):
    crds = load_crds(root)
    failures = []
    examples = list(example_objects(root))
    for path, doc in examples:
        broken = violations(crds[doc["kind"]], doc)
        status = "ok" if not broken else f"BROKEN {broken}"
        print(f"example {os.path.relpath(path, root)} {doc['kind']}/{doc['metadata']['name']}: {status}")
        if broken:
            failures.append(f"{path}: {broken}")
    broken_rules = set()
    for name, kind, good, bad, old, message in cases(examples):
        schema = crds[kind]
        good_found = violations(schema, good, old)
        bad_found = violations(schema, bad, old)
        matched = [v for v in bad_found if message.lower() in v[2].lower()]
        ok = not good_found and len(bad_found) == 1 and matched
        print(f"case {name}: {'ok' if ok else 'FAILED'}"
              + (f" -> refused at {matched[0][0]}: {matched[0][2]}" if matched else ""))
        if not ok:
            failures.append(f"{name}: good={good_found} bad={bad_found} expected {message!r}")
        for v in bad_found:
            broken_rules.add((kind, v[1]))
    for kind, schema in crds.items():
        for path, v in rules_of(schema):
            if (kind, v["rule"]) not in broken_rules:
                failures.append(f"{kind} rule at {path} is broken by no case: {v['rule']}")
    total = sum(1 for s in crds.values() for _ in rules_of(s))
    print(f"{total} CEL rules, {len(broken_rules)} broken by a case, "
          f"{len(examples)} example objects checked")
    if failures:
        print("CEL checks FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("CEL checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
