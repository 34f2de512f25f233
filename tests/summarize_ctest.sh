#!/usr/bin/env bash
# summarize_ctest.sh NAME LOG: one line from a ctest log: how many tests ran and passed, how many
# were skipped (and which), how many failed. tests/run.sh prints these lines at the end.
set -euo pipefail
name=$1 log=$2
total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n 1)
skipped=$(grep -c '\*\*\*Skipped' "$log" || true)
names=$(sed -n 's/.*Test *#[0-9]*: \([^ ]*\) .*\*\*\*Skipped.*/\1/p' "$log" | paste -sd, -)
ran=$((${total:-0} - skipped))
line="$name: $ran tests ran, $((ran - ${failed:-0})) passed, ${failed:-?} failed"
((skipped)) && line+=", $skipped skipped ($names)"
echo "$line"
