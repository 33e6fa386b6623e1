# Headless Chromium for the browser tests (internal/testutil/browser: the
# console at / and the ChatUI tests), driven through the DevTools protocol.
apt_install chromium
chromium --version 2>/dev/null || echo "chromium did not answer --version" >&2
# Browser tests write screenshots and accessibility reports here (kept after
# the run, unlike t.TempDir); a CI system can upload the directory.
export MOZAIKS_ARTIFACTS="${MOZAIKS_ARTIFACTS:-$PWD/artifacts}"
mkdir -p "$MOZAIKS_ARTIFACTS"
