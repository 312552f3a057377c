# Turns a fresh Debian root into a testenv node image. Runs inside the new root
# (chrooted by mmdebstrap's customize hook) with `sh -eu`.

# SSH host keys: the package generated a set at install time, which every container of
# the image would share. Remove them; each container makes its own on first boot
# (Debian's ssh.service does not).
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/ssh-hostkeys.service <<'UNIT'
[Unit]
Description=Generate this host's SSH host keys
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
UNIT
mkdir -p /etc/systemd/system/ssh.service.wants
ln -sf ../ssh-hostkeys.service /etc/systemd/system/ssh.service.wants/ssh-hostkeys.service

# An empty machine-id makes systemd create a fresh one in every container.
: > /etc/machine-id

# Units that cannot work in a container (consoles, fstab remounts, the first-boot
# prompts), and timers that would change files at random moments and make snapshots
# of a node differ for no reason.
for unit in getty.target console-getty.service systemd-firstboot.service \
    systemd-remount-fs.service apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
    ln -sf /dev/null "/etc/systemd/system/$unit"
done

# The journal stays in memory: nodes are short-lived and this keeps boots fast.
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' > /etc/systemd/journald.conf.d/testenv.conf

# Test users: `ops` may sudo without a password, `opspw` must give one (set per cluster).
useradd --create-home --shell /bin/bash ops
useradd --create-home --shell /bin/bash opspw
printf 'ops ALL=(ALL:ALL) NOPASSWD: ALL\nopspw ALL=(ALL:ALL) ALL\n' > /etc/sudoers.d/testenv-users
chmod 0440 /etc/sudoers.d/testenv-users
visudo -c -q

# Like hardened production hosts, sshd drops clients that stop answering (15 s), so a
# session whose controller was cut off ends and its agent releases the cluster lock.
mkdir -p /etc/ssh/sshd_config.d
printf 'ClientAliveInterval 5\nClientAliveCountMax 3\n' > /etc/ssh/sshd_config.d/10-testenv-alive.conf

install -d -m 0700 /root/.ssh
