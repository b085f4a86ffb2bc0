#!/usr/bin/env bash
# Download the JSON schemas of the custom resources the platform declares into DEST (default
# .local/schemas/crds), laid out {group}/{kind}_{version}.json as validate_manifests.py reads
# them. Source: the datreeio/CRDs-catalog repository (Apache-2.0). Needs internet.
# Usage: platform/tests/download-schemas.sh [DEST] ; then `CRD_SCHEMAS=DEST make validate`.
set -euo pipefail

dest="${1:-.local/schemas/crds}"
ref="${CRDS_CATALOG_REF:-main}"
url="${CRDS_CATALOG_URL:-https://codeload.github.com/datreeio/CRDs-catalog/tar.gz/${ref}}"
groups=(
  argoproj.io
  elbv2.k8s.aws
  external-secrets.io
  gateway.networking.k8s.io
  karpenter.k8s.aws
  karpenter.sh
  kyverno.io
  monitoring.coreos.com
  policies.kyverno.io
)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
curl --fail --silent --show-error --location --retry 3 \
  "$url" -o "$tmp/catalog.tar.gz"
patterns=("*/LICENSE")
for group in "${groups[@]}"; do patterns+=("*/${group}/*.json"); done
tar -xzf "$tmp/catalog.tar.gz" -C "$tmp" --strip-components=1 --wildcards "${patterns[@]}"

mkdir -p "$dest"
cp "$tmp/LICENSE" "$dest/"
for group in "${groups[@]}"; do
  rm -rf "${dest:?}/${group}"
  cp -r "$tmp/${group}" "$dest/${group}"
done
echo "$(find "$dest" -name '*.json' | wc -l) schemas in $dest (datreeio/CRDs-catalog@${ref})"
