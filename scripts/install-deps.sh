#!/usr/bin/env bash
# Install what Petrel's demo, tests and benchmarks need on a fresh Debian 12 machine (run as
# root): the Debian packages below, then Petrel with its Python dependencies into .venv (never
# into the system python: Debian's refuses, PEP 668), and a link /usr/local/bin/petrel to it.
# PYTHON=/path/to/python3 picks the interpreter for .venv (default: python3 on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

# Every Debian package that the demo, the tests and the benchmarks use, one per line.
# tests/unit/test_prerequisites.py reads this list: each program in petrel.lab.prerequisites.LAB_PROGRAMS
# and each plugin in the lab charon's `load =` line must come from one of these packages (or a
# package they depend on), so the list cannot silently fall behind.
APT_PACKAGES=(
  python3                         # Debian's python3 (another python3 on PATH works as well)
  python3-venv                    # python3 -m venv with pip (ensurepip), for .venv
  ca-certificates                 # pip fetches from PyPI over HTTPS
  iproute2                        # ip, nstat: namespaces, veth, addresses, counters
  procps                          # sysctl in the namespaces
  nftables                        # nft: NAT and random loss in the lab
  conntrack                       # conntrack -F: the NAT-mapping test
  iputils-ping                    # ping: rekey-under-traffic test
  iperf3                          # throughput: demo, lifecycle test, benchmarks
  tcpdump                         # captures in the e2e tests
  tshark                          # tshark/editcap: the decoder compared with Wireshark's
  strongswan-charon               # charon: the reference peer
  strongswan-swanctl              # swanctl and the vici plugin
  libcharon-extra-plugins         # kernel-libipsec: charon's userspace ESP data plane
  libstrongswan-standard-plugins  # openssl: charon's hashers, ciphers and DH
  libstrongswan-extra-plugins     # curve25519
  strongswan-pki                  # pki: certificates for the certificate tests
  time                            # /usr/bin/time -v: fuzz/campaign.py's peak memory per target
  systemd                         # systemd-analyze verify: the shipped unit (packaging/systemd)
)

# One run at a time (tests and the demo may start this script concurrently).
exec 9<scripts/install-deps.sh
flock 9

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# charon must not run as a system service: the lab starts its own instances in namespaces.
if command -v systemctl >/dev/null; then
  systemctl disable --now strongswan-starter strongswan >/dev/null 2>&1 || true
fi

# Petrel into .venv, with the dev (pytest, hypothesis, ruff) and fuzz (atheris) extras.
python=${PYTHON:-python3}
if ! .venv/bin/python -c "" 2>/dev/null; then  # none yet, or its interpreter is gone
  rm -rf .venv
  echo "install-deps: $("$python" -c 'import sys; print(sys.executable)') -m venv .venv"
  "$python" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install (the source is editable).
stamp=.venv/petrel-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/petrel ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install-deps: .venv/bin/pip install -e '.[dev,fuzz]'"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,fuzz]'
  echo "$want" >"$stamp"
fi
# `petrel` on PATH, as README.md says.
ln -sfn "$PWD/.venv/bin/petrel" /usr/local/bin/petrel
