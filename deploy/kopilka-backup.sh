#!/bin/sh
# deploy/kopilka-backup.sh: one backup of a served Kopilka database into a
# directory, then only the newest KEEP backups kept. Run nightly by
# kopilka-backup.service/.timer; safe by hand too.
#
#   kopilka-backup.sh DB DIR [KEEP]      (KEEP defaults to 14)
#
# Each backup is DIR/kopilka-YYYYmmddTHHMMSSZ.db and its key file .db.key
# (mode 0600), written by `kopilka backup`, which checks the copy as
# `kopilka verify` does; a backup that fails leaves no file behind and this
# exits non-zero without removing any older backup. $KOPILKA (default
# /usr/local/bin/kopilka) is the binary.
set -eu
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "usage: kopilka-backup.sh DB DIR [KEEP]" >&2
    exit 2
fi
db=$1
dir=$2
keep=${3:-14}
case $keep in
    '' | *[!0-9]* | 0)
        echo "kopilka-backup.sh: KEEP must be a whole number from 1, got '$keep'" >&2
        exit 2
        ;;
esac
kopilka=${KOPILKA:-/usr/local/bin/kopilka}
umask 077
out="$dir/kopilka-$(date -u +%Y%m%dT%H%M%SZ).db"
if ! "$kopilka" backup "$db" "$out"; then
    rm -f "$out" "$out.key"
    echo "kopilka-backup.sh: the backup of $db to $out failed; older backups kept" >&2
    exit 1
fi
echo "kopilka-backup.sh: wrote $out and $out.key"
# The names sort by time; remove all but the newest $keep (and their keys).
ls -1 "$dir" | grep -E '^kopilka-[0-9]{8}T[0-9]{6}Z\.db$' | sort -r | tail -n +"$((keep + 1))" |
    while read -r old; do
        rm -f "$dir/$old" "$dir/$old.key"
        echo "kopilka-backup.sh: removed $dir/$old (more than $keep backups)"
    done
