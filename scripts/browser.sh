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
  ensure_axe
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

# axe-core, the accessibility engine the browser tests run on every page they visit: one
# pinned release from the npm registry, checked against its known digest, kept under target/.
AXE_VERSION=4.11.0
AXE_SHA256=e9e5863c33a874f09bc01acd9234b7e3c871479f5eef8802fa582544465e6d01
ensure_axe() {
  local dir="${CARGO_TARGET_DIR:-$PWD/target}/tools/axe-core-$AXE_VERSION"
  local file="$dir/axe.min.js"
  if [ ! -f "$file" ] || ! echo "$AXE_SHA256  $file" | sha256sum -c --status; then
    mkdir -p "$dir"
    local tgz="$dir/axe-core.tgz"
    curl -fsSL "https://registry.npmjs.org/axe-core/-/axe-core-$AXE_VERSION.tgz" -o "$tgz" \
      || { echo "browser: could not fetch axe-core $AXE_VERSION" >&2; return 1; }
    tar -xzf "$tgz" -C "$dir" --strip-components=1 package/axe.min.js
    rm -f "$tgz"
    echo "$AXE_SHA256  $file" | sha256sum -c --status \
      || { echo "browser: axe-core $AXE_VERSION does not match its digest" >&2; rm -f "$file"; return 1; }
  fi
  export CREDITMESH_TEST_AXE="$file"
}
