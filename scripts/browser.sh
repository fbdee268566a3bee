#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes sure Debian's Chromium and ChromeDriver are installed for
# the browser tests (with a CJK font, so that screenshots show the Chinese pages), and exports
# CREDITMESH_TEST_CHROMEDRIVER and CREDITMESH_TEST_CHROMIUM.

ensure_browser() {
  if [ -n "${CREDITMESH_TEST_CHROMEDRIVER:-}" ]; then
    echo "browser: using CREDITMESH_TEST_CHROMEDRIVER"
    return 0
  fi
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing+=(fonts-wqy-microhei)
  command -v pk12util >/dev/null 2>&1 || missing+=(libnss3-tools)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "browser: installing ${missing[*]} from Debian's packages"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
      || { $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; } \
      || { echo "browser: could not install ${missing[*]}" >&2; return 1; }
  fi
  ensure_certificate_policy
  export CREDITMESH_TEST_CHROMEDRIVER="$(command -v chromedriver)"
  export CREDITMESH_TEST_CHROMIUM="$(command -v chromium)"
  echo "browser: $("$CREDITMESH_TEST_CHROMIUM" --version 2>/dev/null | head -1) with $("$CREDITMESH_TEST_CHROMEDRIVER" --version | head -1)"
}

# The console's browser tests sign in with a soft certificate in the browser's NSS database.
# Chromium presents one without asking only where a managed policy says so: this one covers
# certificates of the creditmesh CA, offered to consoles on the loopback address alone.
ensure_certificate_policy() {
  local dir=/etc/chromium/policies/managed file=/etc/chromium/policies/managed/creditmesh-tests.json
  local policy='{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://127.0.0.1:*\",\"filter\":{\"ISSUER\":{\"CN\":\"creditmesh regional CA\"}}}"]}'
  if [ -f "$file" ] && [ "$(cat "$file")" = "$policy" ]; then
    return 0
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
  $sudo mkdir -p "$dir" && printf '%s\n' "$policy" | $sudo tee "$file" >/dev/null \
    || { echo "browser: could not write $file" >&2; return 1; }
  echo "browser: wrote $file"
}
