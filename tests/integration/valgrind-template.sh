#!/bin/sh
# valgrind (memcheck) on a template save and on a clone: no leaks, no errors.
# Usage: valgrind-template.sh UVMCTL BOOT_FILES
set -u
here=$(dirname "$0")
tpl=$(mktemp -d /dev/shm/uvm-valgrind-tpl-XXXXXX)
trap 'rm -rf "$tpl"' EXIT
rmdir "$tpl"
"$here/valgrind-run.sh" "$1" template create --boot-files "$2" --memory 256 "$tpl" || exit $?
"$here/valgrind-run.sh" "$1" run --template "$tpl" -- hostname
