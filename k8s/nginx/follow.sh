#!/bin/sh
# nginx that follows the nodes: starts nginx in the foreground once `sio-nodes` resolves,
# then re-resolves it every few seconds and reloads nginx (gracefully: open websockets
# and long-polls finish on the old workers) when the set of node addresses changes.
#
# Why: open-source nginx before 1.27.3 resolves an upstream's host names only when it
# starts or reloads, so a node added by scaling, or a pod rescheduled onto a new address,
# would get no traffic until someone ran `nginx -s reload`. ONE script for both
# deployments, next to sio.conf: docker-compose.yml mounts it and k8s/nginx puts it in
# the same ConfigMap; both run it as the nginx container's command
# (`sh /etc/nginx/conf.d/follow.sh`; nginx only includes conf.d/*.conf).
#
# Settings (environment):
#   SIO_NGINX_FOLLOW        host names to follow, space-separated (default: sio-nodes)
#   SIO_NGINX_FOLLOW_EVERY  seconds between checks (default: 5; 0 turns following off)
#
# Needs a POSIX sh, awk and getent (the official Debian-based nginx images) or busybox's
# nslookup (busybox-based images).
set -u

hosts=${SIO_NGINX_FOLLOW:-sio-nodes}
every=${SIO_NGINX_FOLLOW_EVERY:-5}

log() { echo "follow.sh: $*" >&2; }

case $every in
    '' | *[!0-9]*) log "SIO_NGINX_FOLLOW_EVERY must be a whole number of seconds, got '$every'"; exit 2 ;;
esac

# lookup NAME: its IPv4 addresses, one a line
if command -v getent >/dev/null 2>&1; then
    lookup() { getent ahostsv4 "$1" | awk '{ print $1 }'; }
elif command -v nslookup >/dev/null 2>&1; then
    # busybox images: the answers follow a "Name:" line (the server's own "Address:"
    # comes before any); IPv6 answers are left out
    lookup() {
        nslookup "$1" 2>/dev/null |
            awk '/^Name:/ { answer = 1; next } answer && /^Address/ && $NF ~ /^[0-9.]+$/ { print $NF }'
    }
else
    log "neither getent nor nslookup in this image: starting nginx without following $hosts"
    every=0
fi

# The sorted addresses of every followed name, on one line ("" when none resolves).
addresses() {
    for h in $hosts; do lookup "$h"; done | sort -u | tr '\n' ' '
}

if [ "$every" -gt 0 ]; then
    # nginx refuses to start while an upstream name has no address (no node is up or
    # ready yet): wait for one instead of exiting and being restarted in a loop
    seen=$(addresses)
    until [ -n "$seen" ]; do
        log "waiting for $hosts to resolve"
        sleep 1
        seen=$(addresses)
    done
    log "$hosts: $seen"
    # the watcher: a child of nginx once the exec below runs, gone with its container
    (
        while sleep "$every"; do
            now=$(addresses)
            # no address at all (every node restarting): keep the last set; a reload
            # would fail on it anyway
            if [ -n "$now" ] && [ "$now" != "$seen" ]; then
                if nginx -s reload; then
                    log "$hosts: $now (was: $seen); reloaded"
                    seen=$now
                else
                    log "$hosts: $now; reload failed, trying again in ${every}s"
                fi
            fi
        done
    ) &
fi

# nginx itself replaces this shell: it gets the container's signals (SIGQUIT: graceful
# stop, as the official image's STOPSIGNAL) and its exit status ends the container
exec nginx -g 'daemon off;'
