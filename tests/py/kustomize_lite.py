"""A stand-in for `kubectl kustomize DIR`, used by the manifest validation test only when
kubectl is not installed. It implements exactly the kustomization features k8s/ uses:
`resources` (files and directories), `namespace`, `labels` (pairs, includeTemplates),
`configMapGenerator` (literals, files, with a content-hash name suffix that references in
workloads follow) and `images` (newName/newTag). Anything else in a kustomization is an
error, so the stand-in cannot silently render less than kubectl would.

    python3 tests/py/kustomize_lite.py k8s/nginx > rendered.yaml
"""

import hashlib
import json
import os
import sys

import yaml

KNOWN = {"apiVersion", "kind", "namespace", "labels", "resources", "configMapGenerator", "images"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def load_kustomization(root):
    with open(os.path.join(root, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    unknown = set(k) - KNOWN
    if unknown:
        raise SystemExit(f"kustomize_lite: unsupported fields in {root}: {sorted(unknown)}")
    return k


def generate_configmaps(root, generators):
    out = []
    for gen in generators or []:
        data = {}
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        for spec in gen.get("files", []):
            key, _, path = spec.partition("=")
            if not path:
                key, path = os.path.basename(spec), spec
            with open(os.path.join(root, path)) as f:
                data[key] = f.read()
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{gen['name']}-{digest}"},
                "data": data,
                "_base_name": gen["name"],
            }
        )
    return out


def render(root):
    k = load_kustomization(root)
    docs = []
    for res in k.get("resources", []):
        path = os.path.normpath(os.path.join(root, res))
        if os.path.isdir(path):
            docs.extend(render(path))
        else:
            with open(path) as f:
                docs.extend(d for d in yaml.safe_load_all(f) if d)
    docs.extend(generate_configmaps(root, k.get("configMapGenerator")))

    renames = {d["_base_name"]: d["metadata"]["name"] for d in docs if "_base_name" in d}
    for doc in docs:
        doc.pop("_base_name", None)
        follow_renames(doc, renames)
        if "namespace" in k and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = k["namespace"]
        for label in k.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
            if label.get("includeSelectors"):
                raise SystemExit("kustomize_lite: includeSelectors is not supported")
            if label.get("includeTemplates") and doc["kind"] in WORKLOADS:
                tmpl = doc["spec"]["template"].setdefault("metadata", {})
                tmpl.setdefault("labels", {}).update(label["pairs"])
                for claim in doc["spec"].get("volumeClaimTemplates", []):
                    claim.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
        for image in k.get("images", []):
            for container in containers(doc):
                if container.get("image", "").split(":")[0] == image["name"]:
                    name = image.get("newName", image["name"])
                    tag = image.get("newTag")
                    container["image"] = f"{name}:{tag}" if tag else name
    return docs


def containers(doc):
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def follow_renames(node, renames):
    """Points `configMapRef`/`configMap` references at the generated (hashed) names."""
    if isinstance(node, dict):
        for key in ("configMapRef", "configMap", "configMapKeyRef"):
            ref = node.get(key)
            if isinstance(ref, dict) and ref.get("name") in renames:
                ref["name"] = renames[ref["name"]]
        for value in node.values():
            follow_renames(value, renames)
    elif isinstance(node, list):
        for value in node:
            follow_renames(value, renames)


def block_strings(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: kustomize_lite.py DIR")
    yaml.add_representer(str, block_strings, Dumper=yaml.SafeDumper)
    docs = render(sys.argv[1])
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=True, default_flow_style=False))


if __name__ == "__main__":
    main()
