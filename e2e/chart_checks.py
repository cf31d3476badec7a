#!/usr/bin/env python3
"""Checks of the Helm chart and the example custom resources.

1. `helm lint` of the chart (default and sample values), through helm-python-sdk.
2. Renders with default and sample values; every rendered manifest and every CRD is validated
   with kubernetes-validate in strict mode for Kubernetes KUBE_VERSION.
3. Every custom resource (the rendered TollgateRuntime, everything under examples/) is validated
   against the openAPIV3Schema of its generated CRD, strictly (unknown fields are errors).
4. checkov on the rendered chart: every failed check must be listed as justified in the chart
   README's "Checkov findings" table; anything else fails.

Usage: chart_checks.py REPO_ROOT OUT_DIR
"""

import copy
import json
import pathlib
import re
import subprocess
import sys

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

KUBE_VERSION = "1.33.0"
RELEASE = "tollgate"
NAMESPACE = "tollgate-system"


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def lint(chart: pathlib.Path, values: dict, label: str) -> None:
    report = helm.lint(str(chart), values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    problems += [{"error": e} for e in report.get("errors", []) or []]
    for m in report.get("messages", []):
        print(f"  lint[{label}] severity={m.get('severity')} {m.get('path')}: {m.get('error')}")
    if problems:
        fail(f"helm lint ({label}) found: {problems}")
    print(f"ok: helm lint --strict ({label})")


def render(chart: pathlib.Path, values: dict, out: pathlib.Path, label: str) -> list[dict]:
    with helm.Chart.load(str(chart)) as loaded:
        loaded.validate_schema(values)
        manifests = loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    target = out / label
    target.mkdir(parents=True, exist_ok=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        file = target / pathlib.Path(path).name
        file.write_text(text)
        docs += [d for d in yaml.safe_load_all(text) if d]
    if not docs:
        fail(f"render ({label}) produced no manifest")
    print(f"ok: rendered {len(docs)} manifests ({label}) into {target}")
    return docs


def load_crd_schemas(crd_dir: pathlib.Path) -> dict[tuple[str, str], dict]:
    schemas = {}
    for file in sorted(crd_dir.glob("*.yaml")):
        crd = yaml.safe_load(file.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = to_json_schema(version["schema"]["openAPIV3Schema"])
            # The API server fills these; manifests carry them.
            schema.setdefault("properties", {}).update(
                apiVersion={"type": "string", "const": f"{group}/{version['name']}"},
                kind={"type": "string", "const": kind},
                metadata={"type": "object"},
            )
            schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def to_json_schema(node):
    """OpenAPI v3 (Kubernetes structural schema) to JSON Schema: `nullable` becomes a null type,
    and objects with declared properties refuse unknown ones (as the API server prunes them and
    kubectl's strict field validation refuses them)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in out and "additionalProperties" not in out and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def validate_custom(doc: dict, schemas: dict, where: str) -> None:
    key = (doc.get("apiVersion"), doc.get("kind"))
    schema = schemas.get(key)
    if schema is None:
        fail(f"{where}: no generated CRD for {key}")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        lines = [f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors]
        fail(f"{where}: {key[1]} {doc['metadata'].get('name')} does not match its CRD:\n  " + "\n  ".join(lines))


def validate_builtin(doc: dict, where: str) -> None:
    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        fail(f"{where}: {doc.get('kind')} {doc['metadata'].get('name')}: {e.message} at {list(e.path)}")


def checkov(rendered: pathlib.Path, readme: pathlib.Path) -> None:
    justified = set(re.findall(r"^\|\s*(CKV\w+)\s*\|", readme.read_text(), flags=re.M))
    result = subprocess.run(
        ["checkov", "-d", str(rendered), "--framework", "kubernetes", "--skip-download", "--compact", "-o", "json"],
        capture_output=True, text=True, check=False,
    )
    try:
        report = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        fail(f"checkov output is not JSON:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    failed = [c for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(len(r.get("results", {}).get("passed_checks", [])) for r in reports)
    found = sorted({c["check_id"] for c in failed})
    unjustified = [c for c in failed if c["check_id"] not in justified]
    for c in failed:
        mark = "justified" if c["check_id"] in justified else "UNJUSTIFIED"
        print(f"  checkov {c['check_id']} {mark}: {c['resource']} ({c['check_name']})")
    if unjustified:
        fail(f"checkov: {len(unjustified)} finding(s) neither fixed nor justified in {readme}")
    print(f"ok: checkov {passed} passed, {len(failed)} failed checks all justified ({', '.join(found) or 'none'})")


def main() -> None:
    root, out = pathlib.Path(sys.argv[1]).resolve(), pathlib.Path(sys.argv[2]).resolve()
    chart = root / "charts" / "tollgate"
    default_values: dict = {}
    sample_values = yaml.safe_load((chart / "ci" / "sample-values.yaml").read_text())

    lint(chart, default_values, "default")
    lint(chart, sample_values, "sample")

    schemas = load_crd_schemas(root / "crds")
    chart_crds = [yaml.safe_load(f.read_text()) for f in sorted((chart / "crds").glob("*.yaml"))]
    for crd in chart_crds:
        validate_builtin(crd, "chart crds/")
    print(f"ok: {len(chart_crds)} chart CRDs valid for Kubernetes {KUBE_VERSION} (strict)")

    count = {"builtin": 0, "custom": 0}
    for label, values in (("default", default_values), ("sample", sample_values)):
        for doc in render(chart, copy.deepcopy(values), out, label):
            if doc.get("apiVersion", "").startswith("tollgate.dev/"):
                validate_custom(doc, schemas, f"render {label}")
                count["custom"] += 1
            else:
                validate_builtin(doc, f"render {label}")
                count["builtin"] += 1
    print(f"ok: {count['builtin']} rendered manifests valid for Kubernetes {KUBE_VERSION} (strict), "
          f"{count['custom']} rendered custom resources match their CRDs")

    examples = sorted((root / "examples").rglob("*.yaml"))
    n = 0
    for file in examples:
        for doc in yaml.safe_load_all(file.read_text()):
            if doc:
                validate_custom(doc, schemas, str(file.relative_to(root)))
                n += 1
    if n == 0:
        fail("no example custom resources found")
    print(f"ok: {n} example custom resources in {len(examples)} files match the generated CRD schemas")

    # A broken example must be caught: the schema check itself is checked.
    broken = yaml.safe_load((root / "examples" / "runtime" / "embedded.yaml").read_text())
    broken["spec"]["replicaz"] = 3
    key = (broken["apiVersion"], broken["kind"])
    if not list(jsonschema.Draft202012Validator(schemas[key]).iter_errors(broken)):
        fail("the CRD schema check accepted an unknown field")
    print("ok: the CRD schema check refuses an unknown field")

    # An external id with white space at an end or a control character is refused at
    # `kubectl apply` (the schema's pattern), as the operator and the runtime refuse it.
    promotion = next(d for d in yaml.safe_load_all(
        (root / "examples" / "catalog" / "entitlements.yaml").read_text())
        if d and d["spec"]["target"].get("customers"))
    key = (promotion["apiVersion"], promotion["kind"])
    for customer, refused in ((" cus_acme", True), ("cus_acme\t", True), ("cus\x00acme", True),
                              ("cus_acme", False), ("Acme Inc.", False)):
        doc = copy.deepcopy(promotion)
        doc["spec"]["target"]["customers"] = [customer]
        errors = list(jsonschema.Draft202012Validator(schemas[key]).iter_errors(doc))
        if refused and not any(e.validator == "pattern" for e in errors):
            fail(f"the Entitlement schema accepted customer {customer!r}: {errors}")
        if not refused and errors:
            fail(f"the Entitlement schema refused customer {customer!r}: {errors[0].message}")
    print("ok: the CRD schemas refuse external ids with surrounding white space or control "
          "characters")

    # The chart's pull Secrets reach the operator, which gives them to runtime pods.
    with_secrets = dict(copy.deepcopy(default_values),
                        imagePullSecrets=[{"name": "regcred"}, {"name": "mirror"}])
    for values, expected in ((default_values, ""), (with_secrets, "regcred,mirror")):
        deployment = [d for d in render(chart, copy.deepcopy(values), out, "pull-secrets")
                      if d["kind"] == "Deployment"][0]
        env = {e["name"]: e.get("value") for e in
               deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        if env.get("TOLLGATE_RUNTIME_IMAGE_PULL_SECRETS") != expected:
            fail(f"TOLLGATE_RUNTIME_IMAGE_PULL_SECRETS is "
                 f"{env.get('TOLLGATE_RUNTIME_IMAGE_PULL_SECRETS')!r}, expected {expected!r}")
    print("ok: the chart passes its imagePullSecrets to the operator for runtime pods")

    namespaced_rbac(chart, default_values, out)

    checkov(out / "sample", chart / "README.md")
    checkov(out / "default", chart / "README.md")
    checkov(out / "namespaced", chart / "README.md")


def namespaced_rbac(chart: pathlib.Path, default_values: dict, out: pathlib.Path) -> None:
    """watchNamespaces: the operator's rules move from one ClusterRole into a Role per listed
    namespace, nothing stays cluster-wide, and the operator is told which namespaces to watch."""
    default = render(chart, copy.deepcopy(default_values), out, "cluster-wide")
    cluster_roles = [d for d in default if d["kind"] == "ClusterRole"]
    if len(cluster_roles) != 1:
        fail(f"default values: expected one ClusterRole, got {len(cluster_roles)}")
    rules = cluster_roles[0]["rules"]
    listed = ["billing", "ml-team"]
    values = dict(copy.deepcopy(default_values), watchNamespaces=listed)
    lint(chart, values, "namespaced")
    docs = render(chart, copy.deepcopy(values), out, "namespaced")
    for doc in docs:
        validate_builtin(doc, "render namespaced")
    cluster_wide = [d["kind"] for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    if cluster_wide:
        fail(f"watchNamespaces set, yet the chart rendered {cluster_wide}")
    for namespace in listed:
        role = [d for d in docs if d["kind"] == "Role"
                and d["metadata"].get("namespace") == namespace]
        binding = [d for d in docs if d["kind"] == "RoleBinding"
                   and d["metadata"].get("namespace") == namespace]
        if len(role) != 1 or len(binding) != 1:
            fail(f"namespace {namespace}: expected one Role and one RoleBinding, "
                 f"got {len(role)} and {len(binding)}")
        if role[0]["rules"] != rules:
            fail(f"the Role in {namespace} grants other rules than the cluster-wide ClusterRole")
        subject = binding[0]["subjects"][0]
        if (binding[0]["roleRef"]["kind"], subject["namespace"]) != ("Role", NAMESPACE):
            fail(f"the RoleBinding in {namespace} binds {binding[0]['roleRef']} to {subject}")
    deployment = [d for d in docs if d["kind"] == "Deployment"][0]
    env = {e["name"]: e.get("value") for e in
           deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    if env.get("TOLLGATE_WATCH_NAMESPACES") != ",".join(listed):
        fail(f"TOLLGATE_WATCH_NAMESPACES is {env.get('TOLLGATE_WATCH_NAMESPACES')!r}")
    default_deployment = [d for d in default if d["kind"] == "Deployment"][0]
    default_env = {e["name"]: e.get("value") for e in
                   default_deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    if default_env.get("TOLLGATE_WATCH_NAMESPACES") != "":
        fail("default values: the operator must watch every namespace")
    # A runtime created by the release outside the watched namespaces is refused.
    orphan = dict(copy.deepcopy(values), runtime={"enabled": True})
    try:
        render(chart, orphan, out, "namespaced-orphan")
    except Exception as error:  # helm's render error
        if "watchNamespaces" not in str(error):
            fail(f"an unwatched release runtime failed for another reason: {error}")
    else:
        fail("runtime.enabled outside watchNamespaces rendered")
    print(f"ok: watchNamespaces {listed} moves the operator's rules into a Role per namespace, "
          "none cluster-wide")


if __name__ == "__main__":
    main()
