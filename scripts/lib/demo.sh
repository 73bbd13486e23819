# shellcheck shell=bash
# scripts/lib/demo.sh: sourced by scripts/run and scripts/demo. Where the demo tenant's current
# credentials are kept between them.
#
#   save_demo_tenant JSON   keep `calltrail admin demo-tenant`'s JSON line in
#                           .calltrail/demo-tenant.json (readable by its owner only)
#
# `admin demo-tenant` revokes the demo tenant's previous demo key each time, so ./scripts/demo
# reuses the credentials ./scripts/run printed instead of asking for new ones (which would
# revoke the key shown by ./scripts/run). .calltrail/ is in .gitignore.

DEMO_TENANT_FILE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.calltrail/demo-tenant.json

save_demo_tenant() {
  mkdir -p "$(dirname "$DEMO_TENANT_FILE")"
  (
    umask 077
    printf '%s\n' "$1" >"$DEMO_TENANT_FILE"
  ) || echo "calltrail: could not keep the demo credentials in $DEMO_TENANT_FILE" >&2
}
