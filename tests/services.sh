#!/usr/bin/env bash
# What `make test` needs outside Python, made ready on a Debian machine: PostgreSQL on
# 127.0.0.1:5432 (user postgres, trust auth), Mosquitto on 127.0.0.1:1883, and Chromium with
# chromedriver for tests/browser. As root, anything missing is installed with apt and anything
# down is started; as another user the script stops at once and prints the commands to run.
# When everything is there already it only probes two ports and PATH.
set -euo pipefail

PG_PORT=5432
MQTT_PORT=1883

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  echo "services: nothing listens on 127.0.0.1:$1 after 30 s" >&2
  return 1
}
have() { command -v "$1" >/dev/null 2>&1; }
# The PostgreSQL cluster configured for port 5432, as "version name" (Debian's pg_lsclusters).
pg_cluster() {
  if have pg_lsclusters; then
    pg_lsclusters --no-header | awk -v p="$PG_PORT" '$3 == p {print $1, $2; exit}'
  fi
}

packages=()
if ! port_open "$PG_PORT" && ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
  packages+=(postgresql)
fi
# mosquitto lives in /usr/sbin, which is not on a normal user's PATH.
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if ! port_open "$MQTT_PORT" && [ ! -x "$mosquitto" ]; then
  packages+=(mosquitto)
fi
have chromium || have chromium-browser || packages+=(chromium)
have chromedriver || packages+=(chromium-driver)

if [ "$(id -u)" -ne 0 ]; then
  # Nothing can be installed or started without root: say exactly what to run instead.
  commands=()
  if [ "${#packages[@]}" -gt 0 ]; then
    commands+=("sudo apt-get install -y ${packages[*]}")
  fi
  if ! port_open "$PG_PORT"; then
    cluster=$(pg_cluster)
    if [ -n "$cluster" ]; then
      commands+=("sudo pg_ctlcluster $cluster start")
    else
      commands+=("sudo $0  (installs and starts PostgreSQL)")
    fi
  fi
  if ! port_open "$MQTT_PORT"; then
    commands+=("sudo $mosquitto -d -c /etc/mosquitto/mosquitto.conf")
  fi
  if [ "${#commands[@]}" -gt 0 ]; then
    echo "services: make test needs set-up that only root can do; run:" >&2
    printf '  %s\n' "${commands[@]}" >&2
    echo "(or all of it: sudo $0) and then make test again." >&2
    exit 1
  fi
  exit 0
fi

installed_postgresql=false
if [ "${#packages[@]}" -gt 0 ]; then
  echo "services: installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${packages[@]}"
  case " ${packages[*]} " in *" postgresql "*) installed_postgresql=true ;; esac
fi

if $installed_postgresql || ! port_open "$PG_PORT"; then
  cluster=$(pg_cluster)
  if [ -z "$cluster" ]; then
    echo "services: no PostgreSQL cluster is configured for port $PG_PORT (see pg_lsclusters)" >&2
    exit 1
  fi
  read -r version name <<<"$cluster"
  if $installed_postgresql; then
    # A cluster Debian has just created asks for a password over TCP; the tests connect as
    # postgres from 127.0.0.1 without one. Only a cluster installed here is changed.
    sed -i '1i host all postgres 127.0.0.1/32 trust  # added by tests/services.sh' \
      "/etc/postgresql/$version/$name/pg_hba.conf"
  fi
  # Without systemd (containers, CI) pg_ctlcluster must not hand over to systemctl.
  if port_open "$PG_PORT"; then
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
  else
    echo "services: starting PostgreSQL $version/$name"
    pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
  fi
fi
wait_port "$PG_PORT"

if ! port_open "$MQTT_PORT"; then
  echo "services: starting Mosquitto"
  # Debian's config writes its pid file there; without systemd nothing creates the directory.
  install -d -o mosquitto -g mosquitto /run/mosquitto
  "$mosquitto" -d -c /etc/mosquitto/mosquitto.conf
fi
wait_port "$MQTT_PORT"
