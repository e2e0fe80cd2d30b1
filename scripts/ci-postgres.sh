#!/usr/bin/env bash
# For CI machines with no PostgreSQL answering on 127.0.0.1: install Debian's server, start it, and
# trust local TCP connections (a throw-away CI machine only; never do this on a shared host).
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null || [[ -z $(ls /etc/postgresql 2>/dev/null) ]]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && exit 0; sleep 1; done
echo "ci-postgres: PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
