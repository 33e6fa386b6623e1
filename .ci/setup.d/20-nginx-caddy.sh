# nginx and caddy are only needed as config validators (`nginx -t`, `caddy validate`)
# by the tests of internal/install/initwiz; they are installed, never started.
apt_install nginx caddy
# Debian's postinst may start them where a service manager runs; stop only if running.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop nginx caddy >/dev/null 2>&1 || true
fi
