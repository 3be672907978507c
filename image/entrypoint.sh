#!/bin/sh
# Container entrypoint: write a starter config on first start, drop root to PUID:PGID (joining the
# docker socket's group), check the config, then serve.
set -eu

CONFIG="${DOCKMASTER_CONFIG:-/config/config.yaml}"
CONFIG_DIR="$(dirname "$CONFIG")"
SOCKET="${DOCKER_SOCKET:-/var/run/docker.sock}"

PUID="${PUID:-1000}"
PGID="${PGID:-1000}"
if [ "$(id -u)" = 0 ] && [ "$PUID" != 0 ] && [ "${DOCKMASTER_RUN_AS_ROOT:-0}" != 1 ]; then
  groups="$PGID"
  if [ -S "$SOCKET" ]; then
    # The socket's group (docker on most hosts, root on some): needed to talk to the engine.
    groups="$groups,$(stat -c %g "$SOCKET")"
  fi
  # ssh refuses to run for a uid without a passwd entry, and looks for ~/.ssh in that entry's home.
  getent group "$PGID" >/dev/null || echo "dockmaster:x:$PGID:" >>/etc/group
  getent passwd "$PUID" >/dev/null \
    || echo "dockmaster:x:$PUID:$PGID:Dockmaster:$CONFIG_DIR:/usr/sbin/nologin" >>/etc/passwd
  mkdir -p "$CONFIG_DIR/.dockmaster"
  # The process must read config, secrets and keys and write the data dir. Only the top level of
  # /config is handed over at each start (not every checkout and working folder, which can be many
  # files on a slow share); everything below is handed over once, when the data dir's owner is not
  # PUID yet (first start, or PUID changed). A read-only mount stays as it is.
  if [ "$(stat -c %u "$CONFIG_DIR/.dockmaster")" != "$PUID" ]; then
    chown -R "$PUID:$PGID" "$CONFIG_DIR" 2>/dev/null \
      || echo "entrypoint: could not chown everything under $CONFIG_DIR to $PUID:$PGID (read-only files?)" >&2
  else
    find "$CONFIG_DIR" -maxdepth 1 ! -user "$PUID" -exec chown "$PUID:$PGID" {} + 2>/dev/null \
      || echo "entrypoint: could not chown the top level of $CONFIG_DIR to $PUID:$PGID" >&2
  fi
  export HOME="$CONFIG_DIR"
  exec setpriv --reuid="$PUID" --regid="$PGID" --groups="$groups" "$0" "$@"
fi

export HOME="${HOME:-$CONFIG_DIR}"
# The daemon applies UMASK itself (default 077); the starter config below is private either way.
export UMASK="${UMASK:-077}"
umask 077
# One-shot verbs (restore, backup, check-config, hash-password, ...) run as given, with no starter config.
case "${1:-}" in
  dockmaster) shift; exec dockmaster "$@" ;;
esac

if [ ! -f "$CONFIG" ]; then
  echo "entrypoint: $CONFIG does not exist; writing a starter config (edit it, then restart)"
  cat >"$CONFIG" <<'YAML'
# Dockmaster starter config: see docs/configuration.md for every key.
dockmaster:
  name: dockmaster
  data_dir: /config/.dockmaster
  time_zone: !env_var TZ UTC
http:
  host: 0.0.0.0
  port: 8099
# No user yet: sign in once with the bootstrap token printed in the log; the setup page then adds
# the first user here (auth.users, its hash in secrets.yaml). Backups: the Backups page.
backup:
  cron: "0 4 * * *"
  keep: 7
# Your git repository, its stacks and its webhook: fill these in, then press Reload on the dashboard
# (docs/tutorial.md). Present but empty, they can be filled without a restart.
repos: []
stacks: []
webhooks: []
YAML
fi

if ! dockmaster check-config -c "$CONFIG"; then
  # Broken addons are disabled and shown in the UI; `run` itself refuses a broken core config.
  echo "entrypoint: the configuration has problems (listed above); starting anyway" >&2
fi
exec dockmaster run -c "$CONFIG" "$@"
