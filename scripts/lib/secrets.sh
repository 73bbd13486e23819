# shellcheck shell=bash
# scripts/lib/secrets.sh: sourced by scripts/run and scripts/demo. The key provider secrets are
# encrypted with, for local use.
#
#   calltrail_secrets_key_up   export CALLTRAIL_SECRETS_KEY: the environment's, else the one kept in
#                              .calltrail/secrets-key (created with 32 random bytes on first use)
#
# The file is the only copy of the key: without it the stored secrets cannot be decrypted, and
# every provider secret has to be set again (`calltrail admin set-provider-secret`).
# .calltrail/ is in .gitignore; the file is readable by its owner only.

CALLTRAIL_SECRETS_KEY_FILE=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.calltrail/secrets-key

calltrail_secrets_key_up() {
  if [[ -n ${CALLTRAIL_SECRETS_KEY:-} ]]; then
    export CALLTRAIL_SECRETS_KEY
    return 0
  fi
  if [[ ! -s $CALLTRAIL_SECRETS_KEY_FILE ]]; then
    mkdir -p "$(dirname "$CALLTRAIL_SECRETS_KEY_FILE")"
    (
      umask 077
      head -c 32 /dev/urandom | base64 >"$CALLTRAIL_SECRETS_KEY_FILE"
    ) || {
      echo "calltrail: could not create $CALLTRAIL_SECRETS_KEY_FILE" >&2
      return 1
    }
    echo "calltrail: generated CALLTRAIL_SECRETS_KEY in $CALLTRAIL_SECRETS_KEY_FILE (keep it: losing it means setting every provider secret again)" >&2
  fi
  CALLTRAIL_SECRETS_KEY=$(tr -d '[:space:]' <"$CALLTRAIL_SECRETS_KEY_FILE")
  export CALLTRAIL_SECRETS_KEY
}
