# SPDX-License-Identifier: GPL-2.0
# Boot 1: vigild under systemd verifies the node's workloads; its state is
# written to /var/lib/vigil when it stops.
vt_check boot1-vigild-enabled systemctl is-enabled vigild.service
# The package enables vigild: it started at boot; start it if it did not
# (the check above failed then).
systemctl start vigild.service 2>/run/start.err
if node_wait_active vigild.service 30; then
	vt_pass boot1-vigild-active "$(systemctl show -p MainPID -p ActiveEnterTimestamp vigild.service | tr '\n' ' ')"
else
	vt_fail boot1-vigild-active "$(cat /run/start.err; journalctl -b -u vigild.service -o cat --no-pager | tail -n 5 | tr '\n' '|')"
fi
node_workloads 1 boot1
node_wait_verified boot1-verified 60

vigilctl baseline show --state-dir $NODE_STATE >/run/baseline1.txt 2>&1
vt_log "baseline after boot 1's workloads: $(head -n 4 /run/baseline1.txt | tr '\n' '|' | cut -c1-300)"

# A clean stop saves the verifier's position and the module's log.
systemctl stop vigild.service
inst=$(cat $NODE_KEEP/boot1.instance 2>/dev/null)
ls -l $NODE_STATE >$NODE_KEEP/boot1.state 2>&1
if [ -n "$inst" ] && [ -s $NODE_STATE/log-$inst.bin ] && [ -s $NODE_STATE/verifier.json ] &&
	grep -q "$inst" $NODE_STATE/verifier.json; then
	vt_pass boot1-state-written "$(ls $NODE_STATE | tr '\n' ' '), log-<instance>.bin $(stat -c %s $NODE_STATE/log-$inst.bin) bytes"
	stat -c %s $NODE_STATE/log-$inst.bin >$NODE_KEEP/boot1.logsize
else
	vt_fail boot1-state-written "$(tr '\n' ' ' <$NODE_KEEP/boot1.state | cut -c1-300)"
fi
