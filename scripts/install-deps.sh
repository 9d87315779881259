#!/usr/bin/env bash
# Install what Petrel's demo and tests need on a fresh Debian 12 machine (run as root).
# Debian: strongSwan (the reference peer), iperf3, tcpdump/tshark (captures), nftables (NAT and loss).
set -euo pipefail
cd "$(dirname "$0")/.."
apt_packages=(iproute2 nftables conntrack iputils-ping iperf3 tcpdump tshark
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins
  strongswan-pki)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# charon must not run as a system service: tests start their own instances in namespaces.
systemctl disable --now strongswan-starter strongswan 2>/dev/null || true
python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
