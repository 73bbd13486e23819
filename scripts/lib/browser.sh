# shellcheck shell=bash
# scripts/lib/browser.sh: sourced by scripts/test. Makes sure Debian's headless Chromium and its
# ChromeDriver are installed for the console's browser tests (crates/calltrail/tests/it/browser.rs).
#
#   calltrail_browser_up    installs chromium and chromium-driver with apt-get when
#                           /usr/bin/chromedriver is missing and we run as root (one line on stderr)
#
# Without root and without the packages it only says so: the browser tests then skip, except
# on CI (CI=true), where they fail, so that a green CI always includes them.

calltrail_browser_up() {
  local log=${CALLTRAIL_ROOT:-.}/target/apt-chromium.log
  if [[ -x /usr/bin/chromedriver && -x /usr/bin/chromium ]]; then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "calltrail: chromium/chromium-driver not installed and not root: browser tests will skip (CI fails them)" >&2
    return 0
  fi
  mkdir -p "$(dirname "$log")"
  echo "calltrail: installing chromium and chromium-driver with apt-get for the browser tests (log: ${log#"${CALLTRAIL_ROOT:-}"/})" >&2
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; } >"$log" 2>&1; then
    echo "calltrail: apt-get install chromium chromium-driver failed; see $log" >&2
    return 1
  fi
}
