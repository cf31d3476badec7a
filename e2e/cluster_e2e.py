#!/usr/bin/env python3
"""Real-cluster end-to-end test (runs only with TOLLGATE_E2E_KUBECONFIG set).

Installs the chart into a fresh namespace, applies the example embedded TollgateRuntime and
the example catalog, then waits until: the runtime's pods are Ready, every Plan is Valid with
all pods on the current policy version, and the runtime answers a Check (through the API
server's service proxy to the runtime's HTTP port). Uninstalls at the end.

Usage: cluster_e2e.py REPO_ROOT
Env: TOLLGATE_E2E_KUBECONFIG (required), TOLLGATE_E2E_TIMEOUT_S (default 600),
     TOLLGATE_E2E_CHECK_PATH (default /v1/check: the runtime's HTTP Check route),
     TOLLGATE_E2E_OPERATOR_IMAGE, TOLLGATE_E2E_RUNTIME_IMAGE (repository:tag of images built
     from the Dockerfile; default: the chart's images for its appVersion).
"""

import json
import os
import pathlib
import sys
import time
import uuid

import helm_python as helm
import yaml
from kubernetes import client, config

GROUP, VERSION = "tollgate.dev", "v1alpha1"
PLURALS = {"Plan": "plans", "Entitlement": "entitlements", "BudgetCap": "budgetcaps", "TollgateRuntime": "tollgateruntimes"}


def wait_for(what: str, probe, deadline: float, every_s: float = 3.0):
    last = None
    while time.monotonic() < deadline:
        try:
            ok, last = probe()
            if ok:
                print(f"ok: {what}")
                return last
        except Exception as e:  # noqa: BLE001 - the API may not be ready yet; report the last
            last = repr(e)
        time.sleep(every_s)
    sys.exit(f"FAIL: timed out waiting for {what}; last seen: {last}")


def image_values() -> dict:
    """Chart values naming the images to test, from TOLLGATE_E2E_*_IMAGE (repository:tag)."""
    values: dict = {}
    for env, path in (("TOLLGATE_E2E_OPERATOR_IMAGE", ("operator", "image")), ("TOLLGATE_E2E_RUNTIME_IMAGE", ("runtimeImage",))):
        image = os.environ.get(env)
        if not image:
            continue
        repository, _, tag = image.rpartition(":")
        if not repository or "/" in tag:
            sys.exit(f"FAIL: {env}={image!r} is not repository:tag")
        node = values
        for key in path:
            node = node.setdefault(key, {})
        node.update(repository=repository, tag=tag)
    return values


def main() -> None:
    root = pathlib.Path(sys.argv[1]).resolve()
    kubeconfig = os.environ["TOLLGATE_E2E_KUBECONFIG"]
    deadline = time.monotonic() + int(os.environ.get("TOLLGATE_E2E_TIMEOUT_S", "600"))
    check_path = os.environ.get("TOLLGATE_E2E_CHECK_PATH", "/v1/check")
    ns = f"tollgate-e2e-{uuid.uuid4().hex[:6]}"

    config.load_kube_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    with helm.Config(kubeconfig_path=kubeconfig, namespace=ns) as cfg:
        cfg.install(str(root / "charts" / "tollgate"), "tollgate", image_values(), namespace=ns, create_namespace=True, wait="watcher", timeout=300)
        print(f"ok: chart installed in {ns}")
        try:
            docs = [d for f in sorted((root / "examples" / "catalog").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
            docs.append(yaml.safe_load((root / "examples" / "runtime" / "embedded.yaml").read_text()))
            docs[-1]["spec"]["store"]["embedded"].pop("storageClassName", None)  # the cluster's default
            for doc in docs:
                custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[doc["kind"]], doc)
            print(f"ok: applied {len(docs)} custom resources")

            def runtime_ready():
                rt = custom.get_namespaced_custom_object(GROUP, VERSION, ns, "tollgateruntimes", "tollgate")
                conds = {c["type"]: c for c in rt.get("status", {}).get("conditions", [])}
                return conds.get("Ready", {}).get("status") == "True", rt.get("status")
            wait_for("TollgateRuntime Ready (pods ready, policy applied)", runtime_ready, deadline)

            def plans_applied():
                plans = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "plans")["items"]
                rows = [(p["metadata"]["name"], p.get("status", {}).get("applied"), [c["status"] for c in p.get("status", {}).get("conditions", []) if c["type"] == "Valid"]) for p in plans]
                ok = all(valid == ["True"] and applied and applied.split("/")[0] == applied.split("/")[1] != "0" for _, applied, valid in rows)
                return ok, rows
            wait_for("every Plan Valid and applied on every pod", plans_applied, deadline)

            def check_answered():
                # POST /v1/check (runtime/src/http/check.rs): proto3 JSON field names; the answer
                # is the decision. The generated connect_post_namespaced_service_proxy_with_path
                # takes no body, so the request goes through the ApiClient, to the runtime's
                # HTTP port through the API server's service proxy.
                body = {"customerId": "cus_e2e", "feature": "model.gpt-small"}
                path = f"/api/v1/namespaces/{ns}/services/tollgate:http/proxy/{check_path.lstrip('/')}"
                resp = core.api_client.call_api(
                    path, "POST", header_params={"Content-Type": "application/json", "Accept": "application/json"},
                    body=body, auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True)
                answer = json.loads(resp.data)
                # cus_e2e does not exist: a decision (deny, unknown_customer) under the policy in force.
                ok = answer.get("allowed") is False and answer.get("reason") == "unknown_customer" and str(answer.get("policyVersion", "")).startswith("sha256:")
                return ok, answer
            answer = wait_for(f"a Check answered at {check_path}", check_answered, deadline)
            print(f"  Check answer: {answer}")
        finally:
            cfg.uninstall("tollgate", namespace=ns)
            core.delete_namespace(ns)
            print(f"cleaned up {ns}")


if __name__ == "__main__":
    main()
