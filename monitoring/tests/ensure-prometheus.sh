#!/usr/bin/env bash
# Make sure promtool and prometheus (Prometheus 2.x) are on PATH; the monitoring tests call this
# first. On Debian or Ubuntu it installs the `prometheus` package when missing (as root, or
# with sudo); elsewhere it says what to install and fails.
set -euo pipefail

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
  exit 0
fi

if command -v apt-get >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  echo "Installing the Debian package prometheus (promtool + prometheus) ..." >&2
  $sudo apt-get update -qq
  # No recommends: the node exporter and the web console assets are not needed here.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
  # The package enables a system service; where systemd runs, stop it so it holds no port.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    $sudo systemctl stop prometheus || true
  fi
  exit 0
fi

cat >&2 <<'MSG'
promtool and prometheus are not installed, and this is not a Debian or Ubuntu machine.
Install Prometheus 2.x so that both binaries are on PATH, for example:
  macOS:   brew install prometheus
  Fedora:  dnf install golang-github-prometheus
  any OS:  the release archive from https://prometheus.io/download/ (prometheus-2.*.tar.gz)
MSG
exit 1
