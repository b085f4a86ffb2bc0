#!/usr/bin/env bash
# Put pinned promtool and prometheus binaries into DEST (default .local/tools/prometheus/bin),
# without touching the system. `make tools` runs it before the monitoring tests.
# 1. The upstream release for this OS and CPU, checked against the release's sha256sums.txt.
# 2. Where GitHub is out of reach: Debian's package at a pinned version, downloaded by apt
#    (which checks it against the signed archive index) and unpacked into DEST; no install.
# 3. Otherwise one line that says what to install, and exit 2.
set -euo pipefail

# renovate: datasource=github-releases depName=prometheus/prometheus
PROMETHEUS_VERSION=3.5.0
# renovate: datasource=repology depName=debian_12/prometheus versioning=loose
PROMETHEUS_DEBIAN_VERSION=2.42.0+ds-5+deb12u1

dest=${1:-.local/tools/prometheus/bin}
stamp="$dest/.installed"
wanted="upstream $PROMETHEUS_VERSION / debian $PROMETHEUS_DEBIAN_VERSION"
if [[ -x $dest/promtool && -x $dest/prometheus && "$(cat "$stamp" 2>/dev/null)" == "$wanted" ]]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"

from_upstream() {
  local os arch base archive
  os=$(uname -s | tr '[:upper:]' '[:lower:]')
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) return 1 ;;
  esac
  archive=prometheus-$PROMETHEUS_VERSION.$os-$arch.tar.gz
  base=https://github.com/prometheus/prometheus/releases/download/v$PROMETHEUS_VERSION
  curl --fail --silent --show-error --location --retry 2 --connect-timeout 10 \
    --output "$work/$archive" "$base/$archive" 2>/dev/null || return 1
  curl --fail --silent --show-error --location --retry 2 --connect-timeout 10 \
    --output "$work/sha256sums.txt" "$base/sha256sums.txt" 2>/dev/null || return 1
  (cd "$work" && grep -E "[[:space:]]\*?${archive}\$" sha256sums.txt | sha256sum --check --strict --quiet -) || return 1
  tar -xzf "$work/$archive" -C "$work" --strip-components=1
  install -m 0755 "$work/promtool" "$work/prometheus" "$dest/"
  echo "prometheus $PROMETHEUS_VERSION (upstream release) in $dest"
}

from_debian() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
  local package=prometheus=$PROMETHEUS_DEBIAN_VERSION
  if ! (cd "$work" && apt-get download -qq "$package" >/dev/null 2>&1); then
    # The package lists may be missing or stale on a new machine; refreshing them installs nothing.
    [[ $(id -u) -eq 0 ]] || return 1
    apt-get update -qq >/dev/null 2>&1 || return 1
    (cd "$work" && apt-get download -qq "$package" >/dev/null 2>&1) || return 1
  fi
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  install -m 0755 "$work/root/usr/bin/promtool" "$work/root/usr/bin/prometheus" "$dest/"
  echo "prometheus $PROMETHEUS_DEBIAN_VERSION (Debian package, unpacked) in $dest"
}

if from_upstream || from_debian; then
  echo "$wanted" >"$stamp"
  exit 0
fi
echo "error: cannot install promtool and prometheus $PROMETHEUS_VERSION into $dest: neither the" \
  "upstream release nor Debian's package $PROMETHEUS_DEBIAN_VERSION could be fetched; put both" \
  "binaries in $dest (or run where github.com is reachable)" >&2
exit 2
