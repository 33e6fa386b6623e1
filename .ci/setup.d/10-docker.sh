# A Docker engine for the tests that run containers (internal/install/stack:
# mozaiks up/down/status/logs; the release image; doctor's Docker checks).
# Uses a running engine if one answers; else installs Debian's docker.io and
# starts dockerd in the background, waiting (bounded) for it to answer.
mozaiks_docker_up() {
  [ -S /var/run/docker.sock ] && docker version >/dev/null 2>&1
}
if ! mozaiks_docker_up; then
  # Keep the package's postinst from starting the daemon itself: we start
  # it below, the same way with or without an init system.
  mozaiks_policy_rcd_created=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    mozaiks_policy_rcd_created=1
  fi
  apt_install docker.io
  if [ "$mozaiks_policy_rcd_created" = 1 ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
  unset mozaiks_policy_rcd_created
  echo "starting dockerd (log: /tmp/dockerd.log)"
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  mozaiks_docker_waited=0
  until mozaiks_docker_up; do
    if [ "$mozaiks_docker_waited" -ge 60 ]; then
      echo "dockerd did not answer on /var/run/docker.sock within 60 s; last lines of /tmp/dockerd.log:" >&2
      tail -n 30 /tmp/dockerd.log >&2 || true
      false
    fi
    sleep 1
    mozaiks_docker_waited=$((mozaiks_docker_waited + 1))
  done
  unset mozaiks_docker_waited
fi
docker version --format 'docker engine {{.Server.Version}} (API {{.Server.APIVersion}})'
unset -f mozaiks_docker_up
