# SPDX-License-Identifier: GPL-2.0
# Boot 2: vigild comes back by itself, loads boot 1's state, says the module
# instance changed, and verifies the new boot's workloads.
if node_wait_active vigild.service 60; then
	vt_pass boot2-vigild-started-at-boot "$(systemctl show -p ActiveEnterTimestamp vigild.service)"
else
	vt_fail boot2-vigild-started-at-boot "$(systemctl is-active vigild.service); $(journalctl -b -u vigild.service -o cat --no-pager | tail -n 5 | tr '\n' '|')"
	systemctl start vigild.service
fi
old=$(cat $NODE_KEEP/boot1.instance 2>/dev/null)
inst=$(cat $NODE_KEEP/boot2.instance 2>/dev/null)
# The finding names both instances: the saved state was boot 1's.
_i=0
while [ $_i -lt 40 ] && ! node_vigild_out | grep -q '"kind":"instance_changed"'; do
	sleep 0.5
	_i=$((_i + 1))
done
f=$(node_vigild_out | grep '"kind":"instance_changed"' | head -n1)
if [ -n "$f" ] && echo "$f" | grep -q "\"saved_instance\":\"$old\"" &&
	echo "$f" | grep -q "\"module_instance\":\"$inst\""; then
	vt_pass boot2-instance-changed "$(echo "$f" | cut -c1-240)"
else
	vt_fail boot2-instance-changed "boot 1 $old, boot 2 $inst: ${f:-no instance_changed finding}"
fi
# Boot 1's module log is kept as it was saved.
size=$(stat -c %s $NODE_STATE/log-$old.bin 2>/dev/null)
if [ -n "$size" ] && [ "$size" = "$(cat $NODE_KEEP/boot1.logsize 2>/dev/null)" ] &&
	vigilctl log --file $NODE_STATE/log-$old.bin >/run/oldlog.txt 2>&1; then
	vt_pass boot2-old-state-kept "log-$old.bin: $size bytes, $(wc -l </run/oldlog.txt) records decoded"
else
	vt_fail boot2-old-state-kept "size ${size:-missing} (boot 1: $(cat $NODE_KEEP/boot1.logsize 2>/dev/null)); $(tail -n 2 /run/oldlog.txt 2>/dev/null | tr '\n' '|')"
fi
vigilctl baseline show --state-dir $NODE_STATE >/run/baseline2.txt 2>&1
vt_log "baseline at boot 2: $(head -n 4 /run/baseline2.txt | tr '\n' '|' | cut -c1-300)"

node_workloads 2 boot2
node_wait_verified boot2-verified 60

systemctl stop vigild.service
if [ -s $NODE_STATE/log-$inst.bin ] && [ -s $NODE_STATE/log-$old.bin ] &&
	grep -q "$inst" $NODE_STATE/verifier.json; then
	vt_pass boot2-state-written "$(ls $NODE_STATE | tr '\n' ' ')"
else
	vt_fail boot2-state-written "$(ls -l $NODE_STATE | tr '\n' ' ' | cut -c1-300)"
fi
