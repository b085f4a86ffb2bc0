#!/usr/bin/env bash
# Render every environment as Argo CD would and check it with the tools that need the internet:
# kubeconform (strict, core schemas plus the CRD catalog) and the Kyverno CLI (our platform must
# pass our own policies). `make validate` checks the same output offline.
# Needs: make setup (for kubectl), kubeconform and kyverno in $BIN (install-tool.sh puts them in .local/bin).
# Writes the rendered files to $OUT (default build/rendered).
set -euo pipefail

kubectl=.venv/bin/kubectl
python=.venv/bin/python
bin=${BIN:-.local/bin}
out=${OUT:-build/rendered}
rm -rf "$out"
mkdir -p "$out"

# The roots Argo CD syncs: each cluster's root, and every per-environment folder an
# ApplicationSet points at (bases and components are rendered through them).
roots=()
for dir in clusters/*/ platform/apps/*/overlays/*/ platform/apps/*/manifests/*/ workflows/manifests/ monitoring/; do
  [[ $dir == */base/ || ! -f $dir/kustomization.yaml ]] && continue
  roots+=("${dir%/}")
done
(( ${#roots[@]} )) || { echo "validate-rendered: no kustomization roots found" >&2; exit 1; }

for root in "${roots[@]}"; do
  name=${root//\//_}
  echo "::group::$root"
  env=${root##*/}
  if [[ $root == platform/apps/* && -d clusters/$env ]]; then
    # An environment's folder renders as that environment's Application syncs it: with its
    # kustomize images and patches, filled from the fixture cluster Secret (argocd_tree.py).
    "$python" platform/tests/argocd_tree.py render "$env" "$root" > "$out/$name.yaml"
  else
    "$kubectl" kustomize "$root" > "$out/$name.yaml"
  fi
  "$bin/kubeconform" -strict -summary -output text \
    -schema-location default \
    -schema-location 'https://raw.githubusercontent.com/datreeio/CRDs-catalog/main/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json' \
    "$out/$name.yaml"
  echo "::endgroup::"
done

# The policies exactly as Argo CD syncs them (their kustomization leaves the test fixtures out).
"$kubectl" kustomize policies > "$out/policies.yaml"
for root in "${roots[@]}"; do
  name=${root//\//_}
  echo "::group::kyverno apply on $root"
  "$bin/kyverno" apply "$out/policies.yaml" --resource "$out/$name.yaml" --remove-color
  echo "::endgroup::"
done
