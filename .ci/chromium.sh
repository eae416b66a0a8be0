# Sourced by .ci/run: install Debian's chromium when it is missing, for the
# analytics dashboard's browser test (examples/travel/internal/story).
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then echo "chromium: $(command -v chromium)"; return 0; fi
  echo "installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  command -v chromium
}
