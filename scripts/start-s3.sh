#!/usr/bin/env bash
# Start a throw-away S3 server on 127.0.0.1 for the integration tests: Debian's Ceph RADOS
# Gateway in front of a one-node Ceph cluster whose single OSD keeps objects in memory
# (memstore). Idempotent: a gateway that still answers is reused; anything else under the
# directory is wiped and started anew.
#
#   ARTMATCH_TEST_S3_DIR   where everything lives (default /tmp/artmatch-s3)
#
# Prints ARTMATCH_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY and writes them to
# $ARTMATCH_TEST_S3_DIR/env (shell syntax, so `. "$ARTMATCH_TEST_S3_DIR/env"` works too).
# Stop with scripts/stop-s3.sh.
set -Eeuo pipefail

DIR=${ARTMATCH_TEST_S3_DIR:-/tmp/artmatch-s3}
CONF=$DIR/ceph.conf
ENV_FILE=$DIR/env

log() { echo "start-s3: $*" >&2; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

gateway_answers() {
    # Any HTTP status line means the gateway is serving; anonymous ListBuckets gives 200.
    local endpoint=$1
    python3 - "$endpoint" <<'PY' >/dev/null 2>&1
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(f"http://{sys.argv[1]}/", timeout=2)
except urllib.error.HTTPError:
    pass
PY
}

if [[ -f $ENV_FILE ]]; then
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    if gateway_answers "$ARTMATCH_TEST_S3_ENDPOINT"; then
        log "already running at $ARTMATCH_TEST_S3_ENDPOINT"
        cat "$ENV_FILE"
        exit 0
    fi
fi

if ! command -v radosgw >/dev/null || ! command -v ceph-mon >/dev/null \
    || ! command -v ceph-osd >/dev/null || ! command -v radosgw-admin >/dev/null; then
    log "installing ceph-mon ceph-osd radosgw ceph-common (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends ceph-mon ceph-osd radosgw ceph-common >/dev/null
fi

# A half-started or dead cluster from an earlier run: stop what is left, then start clean.
"$(dirname "$0")/stop-s3.sh" >/dev/null 2>&1 || true
rm -rf "$DIR"
mkdir -p "$DIR"/{mon,osd/ceph-0,rgw,run,log}

FSID=$(uuidgen)
MON_PORT=$(free_port)
RGW_PORT=$(free_port)

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON_PORT
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
# Throw-away cluster on loopback: no cephx. With auth none the daemons still negotiate the
# messenger mode, and radosgw stalls on "get_initial_auth_request returned -13" unless every
# side accepts the same modes.
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
ms mon service mode = crc secure
ms mon cluster mode = crc secure
ms client mode = crc secure
ms service mode = crc secure
ms cluster mode = crc secure
# One OSD: pools of one replica and few placement groups, or they never become active.
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
# The monitor refuses to start (exit 28, ENOSPC, a message only in its log) when its file
# system has less than 5 % free: on a big disk that is still gigabytes. The cluster keeps a
# few megabytes there and its objects in memory, so only a really full disk stops it.
mon data avail crit = 0
mon data avail warn = 0
# Everything in files under $DIR, nothing in /var or /etc.
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
keyring = $DIR/keyring
mon cluster log file = $DIR/log/cluster.log

[osd]
# Objects live in memory: fast, nothing to clean on disk, gone at stop (which is the point).
osd objectstore = memstore
memstore device bytes = 2147483648
osd memory target = 939524096

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw
rgw dns name = 127.0.0.1
# Deleted objects' data (every multipart upload's tail) waits for garbage collection, two hours
# by default, and memstore holds it in memory until then: collect at once instead.
rgw gc obj min wait = 0
rgw gc processor period = 5
EOF
touch "$DIR/keyring"

ceph_() { ceph -c "$CONF" --connect-timeout 10 "$@"; }

# A daemon that fails writes why only to its log: show the end of every log, then fail.
on_error() {
    local status=$?
    log "failed (exit $status); the end of each log under $DIR/log:"
    for f in "$DIR"/log/*.log; do
        [[ -f $f ]] || continue
        echo "--- $f" >&2
        tail -n 15 "$f" >&2
    done
    exit "$status"
}
trap on_error ERR

start=$SECONDS
log "starting monitor on 127.0.0.1:$MON_PORT"
monmaptool --create --clobber --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >/dev/null
ceph-mon -c "$CONF" -i a

log "starting OSD (memstore)"
OSD_UUID=$(uuidgen)
OSD_ID=$(ceph_ osd new "$OSD_UUID")
ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" >/dev/null 2>&1
ceph-osd -c "$CONF" -i "$OSD_ID" 2>>"$DIR/log/osd-stderr.log"

log "starting radosgw on 127.0.0.1:$RGW_PORT"
radosgw -c "$CONF" -n client.rgw

for _ in $(seq 1 120); do
    gateway_answers "127.0.0.1:$RGW_PORT" && break
    sleep 0.5
done
if ! gateway_answers "127.0.0.1:$RGW_PORT"; then
    log "radosgw did not answer within 60 s; logs in $DIR/log"
    tail -n 20 "$DIR"/log/client.rgw.log >&2 || true
    exit 1
fi

# Fresh keys per cluster: nothing to leak, and no default credentials anywhere.
ACCESS_KEY=$(python3 -c 'import secrets, string; print("".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(20)))')
SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
radosgw-admin -c "$CONF" user create --uid=artmatch-test --display-name="artmatch tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null

cat >"$ENV_FILE" <<EOF
ARTMATCH_TEST_S3_ENDPOINT=127.0.0.1:$RGW_PORT
ARTMATCH_TEST_S3_ACCESS_KEY=$ACCESS_KEY
ARTMATCH_TEST_S3_SECRET_KEY=$SECRET_KEY
EOF
log "ready in $((SECONDS - start)) s"
cat "$ENV_FILE"
