#!/usr/bin/env bash
# After the suite: the host is as it was. Fails, naming what is left or changed, when a test
# (or a peer runtime a test drives) left a process, cgroup, mount, bridge or nftables table
# of rsafe behind, or changed the host's device nodes (runc 1.1 once chowned /dev/null to a
# user-namespaced container's root through its stdio).
set -uo pipefail
problems=()
for dev in null zero full random urandom tty; do
    got=$(stat -c '%u:%g %a' "/dev/$dev")
    [[ $got == "0:0 666" ]] || problems+=("/dev/$dev is $got, not 0:0 666")
done
# What rsafe starts ends with its container; give the last exits a few seconds.
left() {
    pgrep -a -f '(^|/)(rsafe|rsafe-runtime)( |$)|rsafe-runtime: denial reporter|^slirp4netns' | grep -v "host-check" || true
    find /sys/fs/cgroup/*/rsafe /sys/fs/cgroup/rsafe -mindepth 1 -maxdepth 1 -type d 2>/dev/null
    grep -E ' /[^ ]*rsafe[^ ]* ' /proc/self/mountinfo || true
    ip -br link 2>/dev/null | grep -E '^(rsafe|rsv|rso)' || true
    nft list tables 2>/dev/null | grep -E 'rsafe' || true
}
for _ in $(seq 1 20); do
    now=$(left)
    [[ -z $now ]] && break
    sleep 0.5
done
[[ -n ${now:-} ]] && problems+=("left behind by the suite:" "$now")
if ((${#problems[@]})); then
    printf 'host-check: %s\n' "${problems[@]}" >&2
    exit 1
fi
echo "host-check: nothing of rsafe left, device nodes unchanged"
