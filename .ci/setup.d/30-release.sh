# Release checks (internal/release): rpm to list the rpm package, make for `make image`.
# dpkg-deb ships with dpkg. The Docker engine comes from 10-docker.sh.
apt_install rpm make
