# nginx and caddy are only config validators for internal/install/initwiz
# (`nginx -t`, `caddy validate`): installed, never started.
# A policy-rc.d that answers 101 keeps the packages' postinst from starting them.
mozaiks_policy_rcd_created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  mozaiks_policy_rcd_created=1
fi
apt_install nginx caddy
if [ "$mozaiks_policy_rcd_created" = 1 ]; then
  rm -f /usr/sbin/policy-rc.d
fi
unset mozaiks_policy_rcd_created
