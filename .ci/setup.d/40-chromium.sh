# Headless Chromium for the browser tests (internal/testutil/browser: the
# console at / and the ChatUI tests), driven through the DevTools protocol.
apt_install chromium
chromium --version 2>/dev/null || echo "chromium did not answer --version" >&2
