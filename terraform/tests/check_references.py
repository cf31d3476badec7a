"""Offline reference check for Terraform modules that need the AWS provider.

`terraform validate` needs the provider, which cannot be downloaded where the tests run, so
this catches what it would catch first: references to undeclared variables, locals, module
outputs, resources and data sources; and that a module's README.md has a table row for
each of its inputs and outputs. Module arguments (unknown or missing) are checked by
`terraform providers`, which loads the module tree without providers.

Usage: python check_references.py MODULE_DIR...
"""

import re
import sys
from pathlib import Path

BLOCK = re.compile(r'^(variable|output|module|resource|data)\s+"([^"]+)"(?:\s+"([^"]+)")?\s*\{', re.M)
LOCALS = re.compile(r"^locals\s*\{\n(.*?)^\}", re.M | re.S)
LOCAL_NAME = re.compile(r"^  ([A-Za-z_][A-Za-z0-9_-]*)\s*=", re.M)
SOURCE = re.compile(r'^\s*source\s*=\s*"([^"]+)"', re.M)
COMMENT = re.compile(r"(?m)^\s*(#|//).*$")

REF_VAR = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")
REF_LOCAL = re.compile(r"\blocal\.([A-Za-z_][A-Za-z0-9_-]*)")
REF_MODULE = re.compile(r"\bmodule\.([A-Za-z_][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_-]*))?")
REF_DATA = re.compile(r"\bdata\.([a-z][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_-]*)")
REF_RESOURCE = re.compile(r"(?<![.\w])(aws_[a-z0-9_]+)\.([A-Za-z_][A-Za-z0-9_-]*)")


def read_module(directory: Path) -> str:
    files = sorted(directory.glob("*.tf"))
    if not files:
        raise SystemExit(f"{directory}: no .tf files")
    return "\n".join(COMMENT.sub("", f.read_text()) for f in files)


def declarations(text: str):
    decl = {"variable": set(), "output": set(), "module": {}, "resource": set(), "data": set()}
    for kind, first, second in BLOCK.findall(text):
        if kind in ("resource", "data"):
            decl[kind].add((first, second))
        elif kind == "module":
            decl[kind][first] = None
        else:
            decl[kind].add(first)
    for m in re.finditer(r'^module\s+"([^"]+)"\s*\{(.*?)^\}', text, re.M | re.S):
        src = SOURCE.search(m.group(2))
        decl["module"][m.group(1)] = src.group(1) if src else None
    decl["local"] = {n for body in LOCALS.findall(text) for n in LOCAL_NAME.findall(body)}
    return decl


def check(directory: Path) -> list[str]:
    text = read_module(directory)
    decl = declarations(text)
    errors = []
    for name in sorted(set(REF_VAR.findall(text)) - decl["variable"]):
        errors.append(f"var.{name} is not declared")
    for name in sorted(set(REF_LOCAL.findall(text)) - decl["local"]):
        errors.append(f"local.{name} is not declared")
    for mod, out in sorted(set(REF_MODULE.findall(text))):
        if mod not in decl["module"]:
            errors.append(f"module.{mod} is not declared")
            continue
        source = decl["module"][mod]
        if out and source and source.startswith("."):
            child = declarations(read_module((directory / source).resolve()))
            if out not in child["output"]:
                errors.append(f"module.{mod}.{out}: {source} has no such output")
    for ref in sorted(set(REF_DATA.findall(text)) - decl["data"]):
        errors.append(f"data.{ref[0]}.{ref[1]} is not declared")
    text_without_data = REF_DATA.sub("", text)
    for ref in sorted(set(REF_RESOURCE.findall(text_without_data)) - decl["resource"]):
        errors.append(f"{ref[0]}.{ref[1]} is not declared")
    readme = directory / "README.md"
    if readme.exists():
        documented = set(re.findall(r"^\| `([A-Za-z0-9_]+)` \|", readme.read_text(), re.M))
        for kind in ("variable", "output"):
            for name in sorted(decl[kind] - documented):
                errors.append(f"{kind} {name} is missing from README.md")
    return errors


def main() -> int:
    failed = 0
    for arg in sys.argv[1:]:
        errors = check(Path(arg))
        for e in errors:
            print(f"{arg}: {e}")
        failed += bool(errors)
        print(f"{arg}: references {'FAILED' if errors else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
