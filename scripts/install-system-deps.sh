#!/usr/bin/env bash
# Debian packages the integration tests need: PostgreSQL, Ceph (RADOS gateway for S3),
# Chromium and its driver for the browser tests; Pango and a font for WeasyPrint (the PDF
# match reports, unit tests too). Skips what is already installed ("-": no command to look for).
set -euo pipefail

# --runtime: only what the service itself needs (Pango and a font for the PDF reports).
runtime=("-:libpango-1.0-0" "-:libpangoft2-1.0-0" "-:fonts-dejavu-core")
servers=("pg_ctlcluster:postgresql" "radosgw:radosgw" "ceph-mon:ceph-mon" "ceph-osd:ceph-osd"
         "ceph:ceph-common" "chromium:chromium" "chromedriver:chromium-driver")
wanted=("${runtime[@]}")
[[ ${1:-} == --runtime ]] || wanted+=("${servers[@]}")

need=()
for cmd_pkg in "${wanted[@]}"; do
    cmd=${cmd_pkg%%:*}
    pkg=${cmd_pkg#*:}
    if ! command -v "$cmd" >/dev/null 2>&1 && ! dpkg -s "$pkg" >/dev/null 2>&1; then
        need+=("$pkg")
    fi
done
if (( ${#need[@]} )); then
    echo "install-system-deps: installing ${need[*]}" >&2
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
