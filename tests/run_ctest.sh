#!/usr/bin/env bash
# run_ctest.sh NAME CTEST_ARGS...: runs ctest with those arguments (its output as usual, its exit
# status kept) and appends one line for it to $SSB_TEST_SUMMARY (when set): how many tests ran and
# passed, how many failed, how many were skipped (and which). tests/run.sh prints these lines at
# the end.
set -euo pipefail
name=$1
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ctest "$@" | tee "$log"
total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n 1)
skipped=$(grep -c '\*\*\*Skipped' "$log" || true)
names=$(sed -n 's/.*Test *#[0-9]*: \([^ ]*\) .*\*\*\*Skipped.*/\1/p' "$log" | paste -sd, -)
ran=$((${total:-0} - skipped))
line="$name: $ran tests ran, $((ran - ${failed:-0})) passed, ${failed:-?} failed"
((skipped)) && line+=", $skipped skipped ($names)"
echo "$line" >>"${SSB_TEST_SUMMARY:-/dev/null}"
