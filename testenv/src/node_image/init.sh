#!/bin/sh
# PID 1 of a testenv node container: make the container look like a host, then hand over
# to systemd.
set -eu

# Docker mounts the cgroup hierarchies read-only. The container runs in its own cgroup
# namespace, so a writable view is rooted at this node's own cgroup: systemd and any
# container runtime installed later create their cgroups below it, never in the host's
# global hierarchy (where nodes would share e.g. /sys/fs/cgroup/pids/k8s.io/<id>).
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
    mount -o remount,bind,rw /sys/fs/cgroup
else
    for dir in /sys/fs/cgroup/*/; do
        mount -o remount,bind,rw "$dir"
    done
fi

# Docker bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf from its own state.
# A bind-mounted file cannot be replaced by rename, which is how careful tools edit them
# on a real host. Keep Docker's content on the first boot, but in a plain file; later
# boots keep whatever the node wrote there, as a host does across reboots.
for name in hosts hostname resolv.conf; do
    path=/etc/$name
    if grep -q " $path " /proc/self/mountinfo; then
        content=$(cat "$path")
        umount "$path"
        if [ ! -s "$path" ]; then
            printf '%s\n' "$content" > "$path"
            chmod 0644 "$path"
        fi
    fi
done

exec /lib/systemd/systemd "$@"
