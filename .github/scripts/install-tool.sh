#!/usr/bin/env bash
# Install a pinned release binary into .local/bin after checking it against the release's checksum file.
# Usage: install-tool.sh kyverno|kubeconform VERSION
# The versions live in ci.yaml under `# renovate:` lines, so Renovate bumps them.
set -euo pipefail

tool=${1:?usage: install-tool.sh kyverno|kubeconform VERSION}
version=${2:?usage: install-tool.sh kyverno|kubeconform VERSION}
[[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "install-tool: version must look like v1.2.3, got '$version'" >&2; exit 2; }

case $tool in
  kyverno)
    base=https://github.com/kyverno/kyverno/releases/download/$version
    archive=kyverno-cli_${version}_linux_x86_64.tar.gz
    sums=checksums.txt
    member=kyverno
    ;;
  kubeconform)
    base=https://github.com/yannh/kubeconform/releases/download/$version
    archive=kubeconform-linux-amd64.tar.gz
    sums=CHECKSUMS
    member=kubeconform
    ;;
  *)
    echo "install-tool: unknown tool '$tool' (expected kyverno or kubeconform)" >&2
    exit 2
    ;;
esac

dest=.local/bin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl --fail --silent --show-error --location --retry 3 --output "$work/$archive" "$base/$archive"
curl --fail --silent --show-error --location --retry 3 --output "$work/$sums" "$base/$sums"
# Only the archive's own line is checked; a release lists every platform.
(cd "$work" && grep -E "[[:space:]]\*?${archive}\$" "$sums" | sha256sum --check --strict -)
mkdir -p "$dest"
tar -xzf "$work/$archive" -C "$work" "$member"
install -m 0755 "$work/$member" "$dest/$member"
"$dest/$member" version 2>/dev/null || "$dest/$member" -v
